// The Jinja subset on the real Qwen3 chat template (expected renderings derived by hand from the template's
// logic), the ChatML default, and the language features chat templates use.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "launcher/serve/chat_template.h"

namespace lattice::serve {
namespace {

using json = nlohmann::ordered_json;

const std::string kQwen3Dir = std::string(LATTICE_TEST_DATA_DIR) + "/tokenizers/qwen3";

std::string render(const std::string& source, const json& vars = json::object()) {
  return ChatTemplate::from_source(source).render(vars.value("messages", json::array()),
                                                  vars.value("add_generation_prompt", false), vars);
}

TEST(Qwen3Template, SingleUserTurnWithGenerationPrompt) {
  const ChatTemplate t = ChatTemplate::from_dir(kQwen3Dir);
  EXPECT_FALSE(t.is_default());
  EXPECT_EQ(t.render(json::array({{{"role", "user"}, {"content", "Hello"}}}), true),
            "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
}

TEST(Qwen3Template, HistoryDropsEarlierReasoningAndThinkingCanBeDisabled) {
  const json messages = json::array({{{"role", "system"}, {"content", "You are helpful."}},
                                     {{"role", "user"}, {"content", "What is 2+2?"}},
                                     {{"role", "assistant"}, {"content", "<think>\nadd them\n</think>\n\n4"}},
                                     {{"role", "user"}, {"content", "And 3+3?"}}});
  EXPECT_EQ(ChatTemplate::from_dir(kQwen3Dir).render(messages, true, {{"enable_thinking", false}}),
            "<|im_start|>system\nYou are helpful.<|im_end|>\n"
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
            "<|im_start|>assistant\n4<|im_end|>\n"
            "<|im_start|>user\nAnd 3+3?<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST(Qwen3Template, LastAssistantTurnKeepsItsReasoning) {
  const json messages = json::array({{{"role", "user"}, {"content", "Hi"}},
                                     {{"role", "assistant"}, {"content", "<think>\nhmm\n</think>\n\nHello!"}}});
  EXPECT_EQ(ChatTemplate::from_dir(kQwen3Dir).render(messages, false),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\nhmm\n</think>\n\nHello!<|im_end|>\n");
}

TEST(Qwen3Template, ToolsToolCallsAndToolResponses) {
  const json tools = json::array({{{"type", "function"},
                                   {"function", {{"name", "get_weather"},
                                                 {"parameters", {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}}}}}}});
  const json call = {{"type", "function"}, {"function", {{"name", "get_weather"}, {"arguments", {{"city", "Paris"}}}}}};
  const json messages = json::array({{{"role", "user"}, {"content", "Weather in Paris?"}},
                                     {{"role", "assistant"}, {"content", ""}, {"tool_calls", json::array({call})}},
                                     {{"role", "tool"}, {"content", "{\"temp\": 20}"}}});
  // tojson keeps the keys in the order the client sent them, as Python's json.dumps does.
  EXPECT_EQ(ChatTemplate::from_dir(kQwen3Dir).render(messages, true, {{"tools", tools}}),
            "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
            "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\", "
            "\"properties\": {\"city\": {\"type\": \"string\"}}}}}\n</tools>\n\n"
            "For each function call, return a json object with function name and arguments within <tool_call></tool_call> "
            "XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n"
            "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
            "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n"
            "<|im_start|>user\n<tool_response>\n{\"temp\": 20}\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatMl, DefaultWhenTheCheckpointHasNone) {
  const ChatTemplate t = ChatTemplate::from_dir(std::string(LATTICE_TEST_DATA_DIR) + "/tiny-llama/f32");
  EXPECT_TRUE(t.is_default());
  const json messages = json::array({{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hi"}}});
  EXPECT_EQ(t.render(messages, true),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.render(messages, false), "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(Jinja, WhitespaceControlTrimBlocksAndLstripBlocks) {
  EXPECT_EQ(render("a  {{- 'b' -}}  c"), "abc");
  EXPECT_EQ(render("{% if true %}\nyes\n{% endif %}\nend"), "yes\nend");          // trim_blocks
  EXPECT_EQ(render("x\n    {% if true %}y{% endif %}"), "x\ny");                  // lstrip_blocks
  EXPECT_EQ(render("{# a comment #}\nz"), "z");
  EXPECT_EQ(render("  {% if true %}\n  yes\n  {% endif %}\n{%+ if true %}keep{% endif %}\n  {{ 'e' }}\n"), "  yes\nkeep  e");
  EXPECT_EQ(render("{{ '}}' ~ \"%}\" }}{% if '%}' %}ok{% endif %}"), "}}%}ok");  // delimiters inside strings
}

TEST(Jinja, LoopsConditionalsAndScoping) {
  const json vars = {{"xs", {3, 1, 2}}};
  EXPECT_EQ(render("{% for x in xs %}{{ loop.index }}:{{ x }}{% if not loop.last %},{% endif %}{% endfor %}", vars), "1:3,2:1,3:2");
  EXPECT_EQ(render("{% for x in xs if x > 1 %}{{ x }}{{ loop.length }}{% endfor %}", vars), "3222");
  EXPECT_EQ(render("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% set y = 1 %}{% for x in xs %}{% set y = x %}{% endfor %}{{ y }}", vars), "1");  // loop scope
  EXPECT_EQ(render("{% set ns = namespace(y=1) %}{% for x in xs %}{% set ns.y = x %}{% endfor %}{{ ns.y }}", vars), "2");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {{"d", {{"a", 1}, {"b", "x"}}}}), "a=1;b=x;");
  EXPECT_EQ(render("{% if a %}A{% elif b %}B{% else %}C{% endif %}", {{"b", true}}), "B");
  EXPECT_EQ(render("{{ 'y' if missing is defined else 'n' }}{{ none is none }}{{ x is not none }}", {{"x", 1}}), "nTrueTrue");
}

TEST(Jinja, ExpressionsFiltersAndMethods) {
  EXPECT_EQ(render("{{ xs[::-1] }}|{{ xs[1:] }}|{{ xs[-1] }}|{{ xs | length - 1 }}", {{"xs", {1, 2, 3}}}), "[3, 2, 1]|[2, 3]|3|2");
  EXPECT_EQ(render("{{ '  hi  ' | trim }}|{{ 'a,b' .split(',') }}|{{ 'xxhixx'.strip('x') }}|{{ 'Ab'.upper() }}"),
            "hi|['a', 'b']|hi|AB");
  EXPECT_EQ(render("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'b' in 'abc' }}{{ 2 not in [1] }}"),
            "TrueTrueTrueTrue");
  EXPECT_EQ(render("{{ d | tojson }}|{{ d | tojson(indent=2) }}", {{"d", {{"a", {1, "x"}}}}}),
            "{\"a\": [1, \"x\"]}|{\n  \"a\": [\n    1,\n    \"x\"\n  ]\n}");
  EXPECT_EQ(render("{{ 7 // 2 }} {{ 7 % 3 }} {{ 1 + 2 * 3 }} {{ 'a' ~ 1 }} {{ 1.5 }} {{ -2 }}"), "3 1 7 a1 1.5 -2");
  EXPECT_EQ(render("{{ xs | join(', ') }}|{{ xs | first }}|{{ missing | default('d') }}", {{"xs", {"p", "q"}}}), "p, q|p|d");
  EXPECT_EQ(render("{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='c') | list }}",
                   {{"ms", {{{"role", "user"}, {"c", 1}}, {{"role", "bot"}, {"c", 2}}}}}), "[1]");
  EXPECT_EQ(render("{{ x }}{{ none }}{{ true }}", {{"x", nullptr}}), "NoneNoneTrue");
  EXPECT_EQ(render("{{ -3|abs }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }}"), "3 True False");  // Jinja precedence, chains
  EXPECT_EQ(render("{% for x in [1, 2] %}{{ x }} {% endfor %}"), "1 2 ");  // lstrip only at a line's start
}

TEST(Jinja, MacrosWithDefaultsKeywordsAndRecursion) {
  EXPECT_EQ(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
                   "{{ greet('a') }} {{ greet('b', '?') }} {{ greet(punct='.', name='c') }}"), "Hi a! Hi b? Hi c.");
  // The shape of Hermes-style tool templates: a recursive macro mapping JSON schema types to Python ones.
  EXPECT_EQ(render("{%- macro py(t) -%}{%- if t.type == 'array' -%}list[{{ py(t['items']) }}]"
                   "{%- elif t.type == 'string' -%}str{%- else -%}Any{%- endif -%}{%- endmacro -%}{{ py(s) }}",
                   {{"s", {{"type", "array"}, {"items", {{"type", "array"}, {"items", {{"type", "string"}}}}}}}}),
            "list[list[str]]");
}

TEST(Jinja, ErrorsNameTheProblem) {
  try {
    render("{{ raise_exception('Conversation roles must alternate') }}");
    FAIL() << "raise_exception did not throw";
  } catch (const ChatTemplateError& e) {
    EXPECT_NE(std::string(e.what()).find("Conversation roles must alternate"), std::string::npos);
  }
  EXPECT_THROW(ChatTemplate::from_source("{% if x %}unclosed"), ChatTemplateError);
  EXPECT_THROW(ChatTemplate::from_source("{% call m() %}{% endcall %}"), ChatTemplateError);
  EXPECT_THROW(render("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}"), ChatTemplateError);
  EXPECT_THROW(render("{{ 'a' + 1 }}"), ChatTemplateError);
  EXPECT_THROW(render("{{ x | nosuchfilter }}", {{"x", 1}}), ChatTemplateError);
}

// What the fuzzer (tests/fuzz/chat_template_fuzz.cc) found or would find: each is a ChatTemplateError naming the
// problem, not a crash, a hang, an exhausted memory or a foreign exception. Results Python computes are Python's.
TEST(Jinja, BoundsAndOverflowsAreErrors) {
  auto error = [](const std::string& source) {
    try {
      render(source);
    } catch (const ChatTemplateError& e) {
      return std::string(e.what());
    }
    return std::string("rendered");
  };
  EXPECT_NE(error("{{ 99999999999999999999 }}").find("number 99999999999999999999 is out of range"), std::string::npos);
  EXPECT_NE(error("{{ " + std::string(300, '(') + "1" + std::string(300, ')') + " }}").find("nests deeper than"), std::string::npos);
  EXPECT_NE(error("{{ " + std::string(300, '-') + "1 }}").find("nests deeper than"), std::string::npos);
  std::string nested_ifs;
  for (int i = 0; i < 300; ++i) nested_ifs = "{% if true %}" + nested_ifs + "{% endif %}";
  EXPECT_NE(error(nested_ifs).find("nests deeper than"), std::string::npos);
  EXPECT_NE(error("{% for i in range(99999999999) %}{% endfor %}").find("past the limit of 1048576"), std::string::npos);
  EXPECT_NE(error("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}")
                .find("runs past 500000 steps"),
            std::string::npos);
  EXPECT_NE(error("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}")
                .find("past the limit of 16777216"),
            std::string::npos);
  EXPECT_NE(error("{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}")
                .find("past the limit of 1048576"),
            std::string::npos);
  EXPECT_NE(error("{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}").find("deeper than"), std::string::npos);
  EXPECT_NE(error("{{ 9223372036854775807 + 1 }}").find("integer overflow"), std::string::npos);
  EXPECT_NE(error("{{ 4611686018427387904 * 2 }}").find("integer overflow"), std::string::npos);
  EXPECT_NE(error("{{ -(-9223372036854775807 - 1) }}").find("integer overflow"), std::string::npos);
  EXPECT_NE(error("{{ (-9223372036854775807 - 1) // -1 }}").find("integer overflow"), std::string::npos);
  EXPECT_NE(error("{{ (-9223372036854775807 - 1) | abs }}").find("abs: integer overflow"), std::string::npos);
  EXPECT_NE(error("{{ (100000000000000000000.0) | int }}").find("no 64-bit integer"), std::string::npos);
  EXPECT_NE(error("{{ {}.get() }}").find("get() needs a key"), std::string::npos);
  EXPECT_NE(error("{{ 'a b'.split(' ', 'x') }}").find("maxsplit must be an integer"), std::string::npos);
  EXPECT_NE(error("{{ [1] | tojson(indent=99999999) }}").find("indent must be in [0, 64]"), std::string::npos);
  EXPECT_EQ(render("{{ (-9223372036854775807 - 1) % -1 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 9007199254740993 // 1 }}"),
            "0 -4 2 -2 9007199254740993");  // Python: exact integer floor division, modulo takes the divisor's sign
  EXPECT_EQ(render("{{ [1, 2, 3][::9223372036854775807] }} {{ range(5, 0, -2) | list }} {{ range(0) | list }}"),
            "[1] [5, 3, 1] []");
  EXPECT_EQ(render("{{ strftime_now('" + std::string(300, 'x') + "') | length }}"), "0");
}

}  // namespace
}  // namespace lattice::serve
