#include "qa/config/config.hpp"

#include <cstdint>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "qa/config/schema.hpp"
#include "qa/util/error.hpp"

namespace qa {
namespace {

// The message of the qa::Error thrown by `f`, and its exit code.
template <class F>
std::pair<std::string, ExitCode> error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return {e.what(), e.code()};
  }
  ADD_FAILURE() << "no qa::Error thrown";
  return {"", ExitCode::kOk};
}

Config parse(const std::string& text) { return Config::from_json_text(text, "cfg.json", "/base"); }

}  // namespace

TEST(Config, LoadsSectionsAndKeepsDefaults) {
  Config c = parse(R"({"train": {"batch_size": 8, "learning_rate": 0.002}, "model": {"d_model": 64}})");
  EXPECT_EQ(c.train.batch_size, 8);
  EXPECT_DOUBLE_EQ(c.train.learning_rate, 0.002);
  EXPECT_EQ(c.model.t5.d_model, 64);
  EXPECT_EQ(c.train.grad_accum_steps, 1);  // default
  EXPECT_EQ(c.data.source_template, "question: {question} context: {context}");
}

TEST(Config, PathsAreRelativeToTheConfigFolder) {
  Config c = parse(R"({"data": {"train": "../data/t.jsonl", "validation": "/abs/v.jsonl"}})");
  EXPECT_EQ(c.data.train, "/data/t.jsonl");
  EXPECT_EQ(c.data.validation, "/abs/v.jsonl");
  c.apply_override("output.dir=out", "/cwd");
  EXPECT_EQ(c.output.dir, "/cwd/out");
}

TEST(Config, UnknownKeyNamesItAndSuggestsTheClosest) {
  auto [msg, code] = error_of([] { parse(R"({"train": {"learnig_rate": 0.1}})"); });
  EXPECT_EQ(code, ExitCode::kUsage);
  EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.learnig_rate"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'train.learning_rate'"), std::string::npos) << msg;
  auto [msg2, code2] = error_of([] { parse(R"({"trian": {}})"); });
  EXPECT_NE(msg2.find("did you mean 'train'"), std::string::npos) << msg2;
}

TEST(Config, WrongTypesAndRangesNameTheKey) {
  auto [m1, c1] = error_of([] { parse(R"({"train": {"batch_size": "8"}})"); });
  EXPECT_NE(m1.find("train.batch_size"), std::string::npos) << m1;
  EXPECT_NE(m1.find("expected integer"), std::string::npos) << m1;
  auto [m2, c2] = error_of([] { parse(R"({"train": {"batch_size": 0}})"); });
  EXPECT_NE(m2.find("out of range"), std::string::npos) << m2;
  auto [m3, c3] = error_of([] { parse(R"({"train": {"batch_size": 2.5}})"); });
  EXPECT_NE(m3.find("expected integer"), std::string::npos) << m3;
  auto [m4, c4] = error_of([] { parse(R"({"train": {"learning_rate": -1}})"); });
  EXPECT_NE(m4.find("train.learning_rate"), std::string::npos) << m4;
  auto [m5, c5] = error_of([] { parse(R"({"train": {"lr_schedule": "cosin"}})"); });
  EXPECT_NE(m5.find("did you mean 'cosine'"), std::string::npos) << m5;
  auto [m6, c6] = error_of([] { parse(R"({"model": {"tie_word_embeddings": 1}})"); });
  EXPECT_NE(m6.find("true or false"), std::string::npos) << m6;
  auto [m7, c7] = error_of([] { parse(R"({"train": 3})"); });
  EXPECT_NE(m7.find("'train'"), std::string::npos) << m7;
  EXPECT_EQ(c1, ExitCode::kUsage);
}

TEST(Config, IntegralFloatsAreAcceptedForIntegers) {
  EXPECT_EQ(parse(R"({"train": {"max_steps": 1e3}})").train.max_steps, 1000);
}

TEST(Config, InvalidJsonReportsLineAndColumn) {
  auto [msg, code] = error_of([] { parse("{\n  \"train\": {\n    \"batch_size\": 8,\n  }\n}"); });
  EXPECT_EQ(code, ExitCode::kUsage);
  EXPECT_NE(msg.find("cfg.json:4:"), std::string::npos) << msg;
}

TEST(Config, OverridesParseByKeyType) {
  Config c = parse("{}");
  c.apply_override("train.batch_size=4", "/cwd");
  c.apply_override("train.learning_rate=1e-3", "/cwd");
  c.apply_override("model.tie_word_embeddings=true", "/cwd");
  c.apply_override("train.precision=bf16", "/cwd");
  c.apply_override("data.source_template=q: {question} c: {context} (x=y)", "/cwd");
  EXPECT_EQ(c.train.batch_size, 4);
  EXPECT_DOUBLE_EQ(c.train.learning_rate, 1e-3);
  EXPECT_TRUE(c.model.t5.tie_word_embeddings);
  EXPECT_EQ(c.train.precision, "bf16");
  EXPECT_EQ(c.data.source_template, "q: {question} c: {context} (x=y)");
}

TEST(Config, BadOverridesNameTheKey) {
  Config c = parse("{}");
  auto [m1, c1] = error_of([&] { c.apply_override("train.batch_size=four", "/"); });
  EXPECT_NE(m1.find("train.batch_size"), std::string::npos) << m1;
  auto [m2, c2] = error_of([&] { c.apply_override("train.batchsize=4", "/"); });
  EXPECT_NE(m2.find("did you mean 'train.batch_size'"), std::string::npos) << m2;
  auto [m3, c3] = error_of([&] { c.apply_override("novalue", "/"); });
  EXPECT_NE(m3.find("section.key=value"), std::string::npos) << m3;
  auto [m4, c4] = error_of([&] { c.apply_override("train.precision=fp8", "/"); });
  EXPECT_NE(m4.find("one of: fp32, bf16"), std::string::npos) << m4;
  auto [m5, c5] = error_of([&] { c.apply_override("train.learning_rate=nan", "/"); });
  EXPECT_NE(m5.find("train.learning_rate"), std::string::npos) << m5;
  EXPECT_EQ(c1, ExitCode::kUsage);
}

// Found by tests/fuzz (corpus/config_fuzz/crash-*).
TEST(Config, NumberTooLargeForADoubleIsAnInvalidJsonError) {
  // nlohmann throws out_of_range.406 (not parse_error) for it; it escaped as a non-qa::Error.
  auto [msg, code] = error_of([] { parse(R"({"train": {"learning_rate": 1e400}})"); });
  EXPECT_EQ(code, ExitCode::kUsage);
  EXPECT_EQ(msg.rfind("cfg.json: invalid JSON: number overflow", 0), 0u) << msg;
}

TEST(Config, IntegersAboveInt64MaxAreOutOfRange) {
  // They parse as unsigned and used to wrap around to negative values when stored (batch_size -1).
  auto [msg, code] = error_of([] { parse(R"({"train": {"batch_size": 18446744073709551615}})"); });
  EXPECT_EQ(code, ExitCode::kUsage);
  EXPECT_NE(msg.find("key 'train.batch_size': 18446744073709551615 is out of range"), std::string::npos) << msg;
  error_of([] { parse(R"({"train": {"seed": 9223372036854775808}})"); });
  EXPECT_EQ(parse(R"({"train": {"seed": 9223372036854775807}})").train.seed, INT64_MAX);
}

TEST(Config, DeeplyNestedValueIsAWrongTypeNotAStackOverflow) {
  // The value used to be copied before its type was checked; the copy recurses once per level.
  const std::size_t depth = 200000;
  const std::string text = R"({"train": {"seed": )" + std::string(depth, '[') + std::string(depth, ']') + "}}";
  auto [msg, code] = error_of([&] { parse(text); });
  EXPECT_NE(msg.find("key 'train.seed': expected integer >= 0, got an array"), std::string::npos) << msg;
}

TEST(Config, OverrideWithInvalidUtf8IsRejected) {
  // It used to be stored, and writing the effective config (to_json().dump()) then threw a json type_error.
  Config c = parse("{}");
  auto [msg, code] = error_of([&] { c.apply_override("data.source_template=q \xff {question} {context}", "/"); });
  EXPECT_EQ(code, ExitCode::kUsage);
  EXPECT_NE(msg.find("key 'data.source_template': invalid UTF-8 at byte 3 of the value"), std::string::npos) << msg;
  error_of([&] { c.apply_override("output.dir=out\xc3", "/"); });
  EXPECT_NO_THROW(c.to_json().dump());
  c.apply_override("data.source_template=caf\xc3\xa9 {question} {context}", "/");
  EXPECT_EQ(c.data.source_template, "caf\xc3\xa9 {question} {context}");
}

TEST(Config, ValidateRequiresTrainingDataAndExistingFiles) {
  Config c = parse("{}");
  auto [m1, c1] = error_of([&] { c.validate(); });
  EXPECT_NE(m1.find("data.train"), std::string::npos) << m1;
  EXPECT_NE(m1.find("required"), std::string::npos) << m1;
  c.apply_override("data.train=/nonexistent/train.jsonl", "/");
  auto [m2, c2] = error_of([&] { c.validate(); });
  EXPECT_NE(m2.find("file not found: /nonexistent/train.jsonl"), std::string::npos) << m2;
}

TEST(Config, ValidateChecksTheArchitecture) {
  Config c = parse(R"({"model": {"feed_forward_proj": "gated-foo"}})");
  c.apply_override(std::string("data.train=") + QA_FIXTURES + "/README.md", "/");
  auto [msg, code] = error_of([&] { c.validate(); });
  EXPECT_NE(msg.find("model.feed_forward_proj"), std::string::npos) << msg;
}

TEST(Config, EffectiveConfigRoundTrips) {
  Config c = parse(R"({"train": {"batch_size": 3}, "data": {"train": "t.jsonl"}})");
  auto j = c.to_json();
  EXPECT_EQ(j["train"]["batch_size"], 3);
  EXPECT_EQ(j["data"]["train"], "/base/t.jsonl");
  // Every schema key is present, and the written config loads back to the same values.
  std::size_t n = 0;
  for (const auto& [section, body] : j.items()) n += body.size();
  EXPECT_EQ(n, config_keys().size());
  Config again = Config::from_json_text(j.dump(), "again.json", "/elsewhere");
  EXPECT_EQ(again.to_json(), j);
}

TEST(Config, CommentKeysAreIgnored) {
  EXPECT_NO_THROW(parse(R"({"_comment": "x", "train": {"_note": "y", "seed": 1}})"));
}

}  // namespace qa
