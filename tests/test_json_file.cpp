// util/json_file.h: the one JSON reader. Every failure is one line that names the file (with the
// parser's line and column) or the key, and what was expected (issue 15 item 9).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>

#include "trainer/metrics_writer.h"
#include "trainer/run_analysis.h"
#include "util/json_file.h"

namespace lorascope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path write_file(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / ("lorascope_json_file_" + name);
  std::ofstream(p) << text;
  return p;
}

std::string error_of_read(const fs::path& p) {
  try {
    read_json_file(p.string());
  } catch (const JsonFileError& e) {
    return e.what();
  }
  return "no error";
}

TEST(JsonFileTest, ReadsAFile) {
  const auto p = write_file("good.json", R"({"r": 8, "alpha": 16.5, "name": "q", "on": true})");
  const json j = read_json_file(p.string());
  const JsonFields f(j, p.string());
  EXPECT_EQ(f.integer("r", 1, 64), 8);
  EXPECT_DOUBLE_EQ(f.number("alpha", 0.0, 100.0), 16.5);
  EXPECT_EQ(f.string("name"), "q");
  EXPECT_TRUE(f.boolean("on"));
  EXPECT_EQ(f.integer("missing", 3, 1, 10), 3);  // the default when absent
  EXPECT_EQ(f.string("missing", "x"), "x");
  EXPECT_EQ(read_ordered_json_file(p.string()).begin().key(), "r");  // the file's order
}

TEST(JsonFileTest, MissingFileIsNamed) {
  EXPECT_EQ(error_of_read("/nonexistent/dir/x.json"), "/nonexistent/dir/x.json: cannot open file");
}

TEST(JsonFileTest, NotJsonNamesTheFileLineAndColumn) {
  const auto p = write_file("bad.json", "{\n  \"a\": 1,\n  \"b\": 2,,\n}\n");
  const std::string e = error_of_read(p);
  EXPECT_EQ(e.rfind(p.string() + ": not valid JSON: ", 0), 0u) << e;
  EXPECT_NE(e.find("line 3, column 10"), std::string::npos) << e;
  EXPECT_EQ(e.find("[json.exception"), std::string::npos) << e;  // the parser's tag is noise
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
}

TEST(JsonFileTest, NumberOutsideDoubleIsNotValidJsonNotACrash) {
  const auto p = write_file("huge.json", R"({"lr": 1e999})");
  const std::string e = error_of_read(p);
  EXPECT_EQ(e.rfind(p.string() + ": not valid JSON: ", 0), 0u) << e;
  EXPECT_NE(e.find("1e999"), std::string::npos) << e;
  EXPECT_NE(error_of_read(write_file("empty.json", "")).find("not valid JSON"), std::string::npos);
}

TEST(JsonFileTest, InMemoryTextNamesWhere) {
  try {
    parse_json_text("{\"x\": ", "data.jsonl:12");
    ADD_FAILURE();
  } catch (const JsonFileError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("data.jsonl:12: not valid JSON: ", 0), 0u) << e.what();
  }
}

std::string error_of_call(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

// Audit 15 item 4: the one JSON-lines reader. A bad line names PATH:LINE; the last line, the
// torn write of a killed run, is left out; both readers of metrics.jsonl in trainer/ go through it.
TEST(JsonFileTest, JsonLinesNameTheFileAndLineOfABadLine) {
  const auto good = write_file("good.jsonl", "{\"step\": 1}\n\n{\"step\": 2}\n");
  const auto lines = read_json_lines(good.string());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1].number, 3);
  EXPECT_EQ(lines[1].text, "{\"step\": 2}");
  EXPECT_EQ(lines[1].value["step"], 2);

  const auto bad = write_file("bad.jsonl", "{\"step\": 1}\n{\"step\": 2,}\n{\"step\": 3}\n");
  const std::string where = bad.string() + ":2: not valid JSON: ";
  std::string e = error_of_call([&] { read_json_lines(bad.string()); });
  EXPECT_EQ(e.rfind(where, 0), 0u) << e;
  e = error_of_call([&] { truncate_jsonl_after(bad.string(), 5); });  // a resumed run's log
  EXPECT_EQ(e.rfind(where, 0), 0u) << e;
  const fs::path run = fs::temp_directory_path() / ("lorascope_json_file_run_" + std::to_string(::getpid()));
  fs::create_directories(run);
  fs::copy_file(bad, run / "metrics.jsonl", fs::copy_options::overwrite_existing);
  e = error_of_call([&] { geometry_history(run.string()); });  // lorascope analyze
  EXPECT_EQ(e.rfind((run / "metrics.jsonl").string() + ":2: not valid JSON: ", 0), 0u) << e;
  fs::remove_all(run);

  const auto torn = write_file("torn.jsonl", "{\"step\": 1}\n{\"step\": 9}\n{\"step\": 3, \"lo");
  EXPECT_EQ(read_json_lines(torn.string()).size(), 2u);
  truncate_jsonl_after(torn.string(), 5);
  std::ifstream in(torn);
  const std::string kept((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(kept, "{\"step\": 1}\n");

  const std::string none = (fs::temp_directory_path() / "lorascope_json_file_none.jsonl").string();
  EXPECT_TRUE(read_json_lines(none, /*missing_ok=*/true).empty());
  EXPECT_EQ(error_of_call([&] { read_json_lines(none); }), none + ": cannot open file");
}

struct FieldCase {
  std::string doc;
  std::function<void(const JsonFields&)> get;
  std::string message;
};

TEST(JsonFileTest, TypedGettersNameTheKeyTheRangeAndTheValue) {
  const std::vector<FieldCase> cases = {
      {R"({"r": "8"})", [](const JsonFields& f) { f.integer("r", 1, 64); }, "cfg.json: r: expected an integer in [1, 64], got \"8\""},
      {R"({"r": 2.5})", [](const JsonFields& f) { f.integer("r", 1, 64); }, "cfg.json: r: expected an integer in [1, 64], got 2.5"},
      {R"({"r": 0})", [](const JsonFields& f) { f.integer("r", 1, 64); }, "cfg.json: r: expected an integer in [1, 64], got 0"},
      {R"({"r": 1e30})", [](const JsonFields& f) { f.integer("r", 1); }, "cfg.json: r: expected an integer >= 1, got 1e+30"},
      {R"({"r": 18446744073709551615})", [](const JsonFields& f) { f.integer("r"); },
       "cfg.json: r: expected an integer, got 18446744073709551615"},
      {R"({})", [](const JsonFields& f) { f.integer("r", 1); }, "cfg.json: r: expected an integer >= 1, got nothing"},
      {R"({"p": 1.5})", [](const JsonFields& f) { f.number("p", 0.0, 1.0); }, "cfg.json: p: expected a number in [0, 1], got 1.5"},
      {R"({"p": null})", [](const JsonFields& f) { f.number("p", 0.0, 1.0); }, "cfg.json: p: expected a number in [0, 1], got null"},
      {R"({"p": 0.5})", [](const JsonFields& f) { f.number("p", 0.0, 0.75, 1.0); }, "cfg.json: p: expected a number in [0.75, 1], got 0.5"},
      {R"({"a": 0})", [](const JsonFields& f) { f.positive("a"); }, "cfg.json: a: expected a positive number, got 0"},
      {R"({"s": 3})", [](const JsonFields& f) { f.string("s"); }, "cfg.json: s: expected a string, got 3"},
      {R"({"b": "yes"})", [](const JsonFields& f) { f.boolean("b", false); }, "cfg.json: b: expected true or false, got \"yes\""},
      {R"({"o": []})", [](const JsonFields& f) { f.object("o"); }, "cfg.json: o: expected an object, got []"},
      {R"([1])", [](const JsonFields&) {}, "cfg.json: expected a JSON object, got [1]"},
  };
  for (const auto& c : cases) {
    try {
      const json j = json::parse(c.doc);
      const JsonFields f(j, "cfg.json");
      c.get(f);
      ADD_FAILURE() << "accepted: " << c.doc;
    } catch (const JsonFileError& e) {
      EXPECT_EQ(std::string(e.what()), c.message) << c.doc;
    }
  }
}

}  // namespace
}  // namespace lorascope
