#!/usr/bin/env python3
"""The chat-template Jinja subset against Python's jinja2 (Hugging Face's settings: sandboxed, trim_blocks,
lstrip_blocks, json.dumps-style tojson, raise_exception) on template snippets in the styles of Llama 2/3,
Mistral, Gemma and Qwen chat templates. Skips (exit 77) where jinja2 is not installed.
usage: check_jinja_vs_jinja2.py JINJA_RENDER"""
import json
import os
import subprocess
import sys
import tempfile

try:
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    print("jinja2 is not installed: skipped")
    sys.exit(77)

render = sys.argv[1]
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: json.dumps(
    x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise Exception(message)


env.globals["raise_exception"] = raise_exception
msgs = [{"role": "system", "content": "Sys"}, {"role": "user", "content": "Hi 'there'"},
        {"role": "assistant", "content": "Yo\n"}, {"role": "user", "content": "Q?"}]
cases = [
 "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]{% elif m['role'] == 'assistant' %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}",
 "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set sys = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set sys = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('alternate') }}{% endif %}{% if loop.index0 == 0 and sys != false %}{% set content = '<<SYS>>\\n' + sys + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
 "{%- for message in messages %}\n    {%- if message.role == 'user' %}\n        {{- '<start_of_turn>user\\n' + message.content | trim + '<end_of_turn>\\n' }}\n    {%- else %}\n        {{- '<start_of_turn>model\\n' + message['content'] | trim }}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}",
 "{{ messages | length }} {{ messages[-1].content | upper }} {{ messages|map(attribute='role')|join(',') }} {{ (messages|selectattr('role','equalto','user')|list)|length }}",
 "{% for m in messages %}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}{% if not loop.last %}|{% endif %}{% endfor %}",
 "{{ 'a b  c'.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} {{ '  x  '.lstrip() }}| {{ 'abc'[::-1] }} {{ [1,2,3,4][1:3] }} {{ [1,2,3][-2:] }}",
 "{{ 10 / 4 }} {{ 10 // 4 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 * 3 + 1 }} {{ 1.0 }} {{ 0.1 + 0.2 }} {{ 3 > 2 and 'y' or 'n' }}",
 "{{ {'b': 1, 'a': [1, 'x', none, true]} | tojson }} {{ {'k': 'v'} }} {{ [none, true, 1.5, 'q'] }}",
 "{%- set ns = namespace(found=false) %}{%- for m in messages %}{%- if m.role == 'assistant' %}{%- set ns.found = true %}{%- endif %}{%- endfor %}{{ ns.found }}",
 "{% for k, v in {'x': 1, 'y': 2}.items() %}{{ k }}{{ v }}{% endfor %}{% for i in range(3) %}{{ i }}{% endfor %}{% for i in range(1, 7, 2) %}{{ i }}{% endfor %}",
 "{{ messages[0].missing is defined }} {{ messages[0].missing is none }} {{ none is none }} {{ 'x' is string }} {{ 3 is number }} {{ messages is iterable }}",
 "  {% if true %}\n  yes\n  {% endif %}\n{%+ if true %}keep{% endif %}\n  {{ 'expr' }}\n",
 "{{ 'Hello World'.title() }} {{ 'hello'.capitalize() }} {{ 'a-b'.replace('-', '+') }} {{ 'abc'.find('c') }} {{ 'xax'.count('x') }} {{ '-'.join(['a','b']) }}",
 "{{ messages[0]['content'] ~ 1 ~ none }} {{ 'x' if false }}|{{ messages | first | tojson }}",
 "{% for m in messages if m.role != 'system' %}{{ loop.index }}:{{ m.role }};{% endfor %}",
 "{{ tools | tojson(indent=2) }}",
 "{%- if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{{ add_generation_prompt }}",
 "{%- if custom_tools is defined %}{%- set tools = custom_tools %}{%- endif %}{%- if not tools_in_user_message is defined %}{%- set tools_in_user_message = true %}{%- endif %}{%- if not date_string is defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}{{- 'Today Date: ' + date_string + '\\n\\n' }}{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}{{- system_message }}{{- '<|eot_id|>' }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}",
 "{% for t in tools %}{% for arg_name, arg_val in t.function.parameters | items %}{{ arg_name }}={{ arg_val | tojson }};{% endfor %}{% endfor %}",
 "{{ (messages | length) % 2 }} {{ messages|last|attr('role') if false else 'z' }} {{ [3,1,2]|reverse|list }} {{ 'abc'|list }} {{ -3|abs }} {{ '5'|int + 1 }}",
 "{% set x = [1, 2] + [3] %}{{ x }} {{ x|length }} {{ 2 in x }} {{ 'ab' * 2 if false else 'no' }} {{ not (1 == 1) }}",
 "{%- for message in messages -%}\n{{ message.role }}\n{%- endfor -%}\n",
 "{% for m in messages %}{% if loop.index0 > 0 %}{{ loop.previtem.role }}>{% endif %}{{ m.role }} {% endfor %}",
 "{{ messages[1].content.strip(\"'\") }} {{ \"a\\tb\" }} {{ 'x' ~ '\\n' ~ 'y' }}",
 "{% if messages[0].role in ['system', 'developer'] and messages|length > 2 %}A{% else %}B{% endif %}",
 "{{ messages[0] }}",
 "{{ 1 < 2 < 3 }}",
 "{{ 'abc'.startswith(('x', 'a')) }} {{ 'a' not in 'bcd' }} {{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(' / ') }}",
]
failures = 0
with tempfile.TemporaryDirectory() as tmp:
    for i, src in enumerate(cases):
        variables = {"messages": msgs, "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": True,
                     "tools": [{"type": "function", "function": {"name": "f", "parameters": {"x": [1, 2]}}}]}
        try:
            want = env.from_string(src).render(**variables)
        except Exception:
            want = None
        with open(os.path.join(tmp, "t"), "w") as t, open(os.path.join(tmp, "v"), "w") as v:
            t.write(src)
            json.dump(variables, v)
        res = subprocess.run([render, t.name, v.name], capture_output=True, text=True, timeout=30)
        got = None if res.returncode != 0 else res.stdout
        if got != want:
            failures += 1
            print(f"case {i}: {src!r}\n  jinja2: {want!r}\n  lattice: {res.stdout!r}")
print(f"{len(cases) - failures} of {len(cases)} snippets render as jinja2 does")
sys.exit(1 if failures else 0)
