#include "qa/train/trainer_state.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "qa/util/error.hpp"

namespace qa {

TEST(TrainerState, JsonRoundTripKeepsEveryField) {
  TrainerState s;
  s.step = 120;
  s.epoch = 3;
  s.position = 7;
  s.best_metric = 81.25;
  s.best_step = 100;
  s.best_exact_match = 81.25;
  s.best_f1 = 85.5;
  s.best_eval_loss = 0.125;
  s.bad_steps = 2;
  auto back = TrainerState::from_json(nlohmann::json::parse(s.to_json().dump()), "state");
  EXPECT_EQ(back.to_json(), s.to_json());
  TrainerState fresh;  // NaN metrics travel as null
  auto j = fresh.to_json();
  EXPECT_TRUE(j["best_metric"].is_null());
  EXPECT_TRUE(std::isnan(TrainerState::from_json(j, "state").best_metric));
}

TEST(TrainerState, BadFieldsNameTheFileAndKey) {
  auto j = TrainerState().to_json();
  j["position"] = -1;
  try {
    TrainerState::from_json(j, "ckpt/trainer_state.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "ckpt/trainer_state.json: key 'position': -1 is out of range");
  }
  j = TrainerState().to_json();
  j.erase("step");
  EXPECT_THROW(TrainerState::from_json(j, "s"), Error);
  j = TrainerState().to_json();
  j["best_f1"] = "high";
  EXPECT_THROW(TrainerState::from_json(j, "s"), Error);
}

}  // namespace qa
