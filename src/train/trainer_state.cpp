#include "qa/train/trainer_state.hpp"

#include <nlohmann/json.hpp>

#include "qa/util/error.hpp"

namespace qa {
namespace {

using json = nlohmann::json;

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

}  // namespace

json TrainerState::to_json() const {
  return {{"step", step},
          {"epoch", epoch},
          {"position", position},
          {"best_metric", number_or_null(best_metric)},
          {"best_step", best_step},
          {"best_exact_match", number_or_null(best_exact_match)},
          {"best_f1", number_or_null(best_f1)},
          {"best_eval_loss", number_or_null(best_eval_loss)},
          {"bad_steps", bad_steps}};
}

TrainerState TrainerState::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw_bad_file(source, "expected a JSON object");
  TrainerState s;
  auto get_int = [&](const char* key, int64_t& dst, int64_t min) {
    if (!j.contains(key) || !j.at(key).is_number_integer()) throw_bad_file(source, std::string("key '") + key + "': expected an integer");
    dst = j.at(key).get<int64_t>();
    if (dst < min) throw_bad_file(source, std::string("key '") + key + "': " + std::to_string(dst) + " is out of range");
  };
  auto get_num = [&](const char* key, double& dst) {
    if (!j.contains(key)) throw_bad_file(source, std::string("key '") + key + "' is missing");
    const auto& v = j.at(key);
    if (v.is_null()) {
      dst = NAN;
    } else if (v.is_number()) {
      dst = v.get<double>();
    } else {
      throw_bad_file(source, std::string("key '") + key + "': expected a number or null");
    }
  };
  get_int("step", s.step, 0);
  get_int("epoch", s.epoch, 0);
  get_int("position", s.position, 0);
  get_num("best_metric", s.best_metric);
  get_int("best_step", s.best_step, -1);
  get_num("best_exact_match", s.best_exact_match);
  get_num("best_f1", s.best_f1);
  get_num("best_eval_loss", s.best_eval_loss);
  get_int("bad_steps", s.bad_steps, 0);
  return s;
}

}  // namespace qa
