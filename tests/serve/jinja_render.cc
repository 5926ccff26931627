// jinja_render TEMPLATE_FILE VARS_JSON: renders a template with the chat-template Jinja subset (messages,
// add_generation_prompt, bos_token, eos_token and every other key of VARS_JSON as variables), for
// check_jinja_vs_jinja2.py. Prints "ERROR: ..." and exits 1 when rendering fails.
#include <fstream>
#include <iostream>
#include <sstream>
#include "launcher/serve/chat_template.h"
int main(int argc, char** argv) {
  std::ifstream t(argv[1]); std::stringstream ts; ts << t.rdbuf();
  std::ifstream v(argv[2]); std::stringstream vs; vs << v.rdbuf();
  auto vars = nlohmann::ordered_json::parse(vs.str());
  try {
    auto tpl = lattice::serve::ChatTemplate::from_source(ts.str(), vars.value("bos_token", ""), vars.value("eos_token", ""));
    std::cout << tpl.render(vars.value("messages", nlohmann::ordered_json::array()), vars.value("add_generation_prompt", false), vars);
  } catch (const std::exception& e) { std::cout << "ERROR: " << e.what(); return 1; }
}
