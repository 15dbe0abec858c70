#!/usr/bin/env python3
"""What transformers' Jinja environment renders, for tests/src/test_jinja.cpp.

    jinja_cases.py OUT.jsonl

Renders each case below with the environment transformers compiles chat templates in
(trim_blocks, lstrip_blocks, loop controls, its tojson / raise_exception / strftime_now) and
writes one row per case: {"name", "template", "vars", "text"} or, when rendering raises,
{"name", "template", "vars", "error": true}. The C++ renderer must give the same text, or an
error where this one raised. Exits non-zero when transformers is missing: the test fails.
"""
import json
import sys

from transformers.utils.chat_template_utils import _compile_jinja_template

MSGS = [
    {"role": "system", "content": "  Be brief.  "},
    {"role": "user", "content": "Hi ☃ 你好 e\u0301"},
    {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nHello!", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}}]},
    {"role": "tool", "content": "{\"temp\": 21.5}"},
    {"role": "user", "content": ""},
]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather \"now\"",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                         "required": ["city"]}}}]

CASES = [
    # whitespace control, trim_blocks, lstrip_blocks
    ("text", "plain text\n", {}),
    ("trailing_newline_kept_once", "a\n\n", {}),
    ("trim_blocks", "{% if true %}\nyes\n{% endif %}\nafter", {}),
    ("lstrip_blocks", "line\n    {% if true %}\n    kept {{ 1 }}\n    {% endif %}\nend", {}),
    ("lstrip_not_after_text", "x  {% if true %}y{% endif %}", {}),
    ("minus_both", "a   \n  {%- if true -%}  \n  b  \n  {%- endif -%}\n  c", {}),
    ("minus_var", "a  {{- 'x' -}}  b {{ 'y' }} c", {}),
    ("plus_disables", "a\n  {%+ if true %}b{% endif +%}\nc", {}),
    ("comment", "a {# note #} b\n  {# line #}\nc {#- x -#} d", {}),
    ("crlf_text", "a\r\nb\rc", {}),
    # expressions
    ("pow_and_bigger", "{{ 2 ** 62 }} {{ 3 ** 0 }} {{ (-2) ** 3 }} {{ 2 ** -1 }} {{ 7 // -2 }} {{ -7 % -3 }}", {}),
    ("namespace_only", "{% set m = messages[0] %}{% set m.content = 'x' %}{{ messages[0].content }}", {"messages": [{"role": "user", "content": "a"}]}),
    ("arith", "{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1.5 + 1 }}", {}),
    ("floats", "{{ 0.1 + 0.2 }} {{ 1e-5 }} {{ 1e20 }} {{ 3.0 }} {{ 1/3 }} {{ 2.5e16 }} {{ 123456789.0 }}", {}),
    ("concat", "{{ 'a' ~ 1 ~ none ~ true ~ [1, 'b'] ~ {'k': 'v'} }}", {}),
    ("string_ops", "{{ 'ab' + 'cd' }} {{ 'x' * 3 }} {{ 'hello'[1:3] }} {{ 'héllo'[::-1] }} {{ 'abc'[-1] }} {{ 'abcdef'[::2] }}", {}),
    ("list_ops", "{{ [1, 2] + [3] }} {{ [1, 2, 3][1:] }} {{ [1, 2, 3][-2] }} {{ [1,2,3,4,5][::-2] }} {{ [1,2,3][5:] }}", {}),
    ("compare", "{{ 1 < 2 < 3 }} {{ 'a' < 'b' }} {{ 1 == 1.0 }} {{ [1] == [1] }} {{ 'a' in 'cat' }} {{ 2 not in [1] }} {{ 'k' in {'k': 1} }}", {}),
    ("logic", "{{ none or 'x' }} {{ 0 and 1 }} {{ not [] }} {{ 'a' if false else 'b' }} {{ 'a' if true }}|{{ 'a' if false }}|", {}),
    ("print_values", "{{ none }} {{ true }} {{ [none, true, 'it\\'s', \"q\\\"\"] }} {{ {'a': [1, 2.0]} }} {{ undefined_name }}.", {}),
    ("escapes", "{{ 'tab\\tnl\\nuni\\u00e9 \\x41' }}", {}),
    ("attr_item", "{{ m.role }} {{ m['content'] }} {{ m.missing is defined }} {{ m.get('role') }} {{ m.get('x', 'dflt') }} {{ m.get('x') }}", {"m": MSGS[0]}),
    ("loop_vars", "{% for x in xs %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }} {% endfor %}", {"xs": ["a", "b", "c"]}),
    ("loop_prev_next", "{% for x in xs %}[{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}]{% endfor %}", {"xs": [1, 2, 3]}),
    ("loop_else", "{% for x in [] %}x{% else %}empty{% endfor %} {% for x in xs if x > 1 %}{{ x }}{{ loop.index }}/{{ loop.length }} {% endfor %}", {"xs": [1, 2, 3]}),
    ("loop_dict", "{% for k in d %}{{ k }}{% endfor %} {% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {{ d.keys() | list }} {{ d.values() | list }}", {"d": {"z": 1, "a": 2}}),
    ("loop_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x > 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("loop_scope", "{% set y = 1 %}{% for x in [1, 2] %}{% set y = x %}{% endfor %}{{ y }}", {}),
    ("namespace", "{% set ns = namespace(found=false, n=0) %}{% for x in [1, 2, 3] %}{% if x == 2 %}{% set ns.found = true %}{% endif %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.found }} {{ ns.n }}", {}),
    ("set_block", "{% set b %}in {{ 1 + 1 }} block{% endset %}[{{ b }}]", {}),
    ("macro", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bo') }} {{ greet('Al', '?') }} {{ greet(punct='.', name='Cy') }}", {}),
    ("macro_closure", "{% set g = 'G' %}{% macro f(x) %}{{ g }}{{ x }}{% endmacro %}{% for i in [1, 2] %}{{ f(i) }}{% endfor %}", {}),
    ("cycle", "{% for x in range(5) %}{{ loop.cycle('a', 'b') }}{% endfor %}", {}),
    ("nested_loops", "{% for a in [1, 2] %}{% for b in ['x', 'y'] %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }}|{% endfor %}", {}),
    ("elif", "{% for n in [1, 2, 3, 4] %}{% if n == 1 %}one{% elif n == 2 %}two{% elif n == 3 %}three{% else %}many{% endif %} {% endfor %}", {}),
    ("range", "{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(5, 0, -2) | list }}", {}),
    # tests
    ("tests", "{{ x is defined }} {{ y is undefined }} {{ none is none }} {{ 's' is string }} {{ {} is mapping }} {{ [1] is sequence }} {{ 's' is sequence }} {{ 3 is odd }} {{ 4 is even }} {{ 1 is number }} {{ 1.0 is float }} {{ 1 is integer }} {{ true is boolean }} {{ 9 is divisibleby 3 }} {{ 2 is in [1, 2] }} {{ 'ab' is lower }} {{ x is not none }} {{ false is sameas false }} {{ 1 is eq 1 }} {{ m is iterable }} {{ (1 > 0) is true }}", {"x": 1, "m": {}}),
    # filters
    ("filters_str", "{{ '  a b  ' | trim }}|{{ 'xxaxx' | trim('x') }}|{{ 'Hi' | upper }}{{ 'Hi' | lower }}|{{ 'hello world' | title }}|{{ 'hELLO' | capitalize }}|{{ 'abc' | replace('b', 'B') }}|{{ 'héllo' | length }}|{{ 'a b  c' | wordcount }}|{{ 'ab' | reverse }}|{{ 'x' | safe }}|{{ 42 | string }}|", {}),
    ("filters_list", "{{ [3, 1, 2] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ ['b', 'A', 'a'] | sort }} {{ [1, 2, 2, 3] | unique | list }} {{ [1, 2] | first }} {{ [1, 2] | last }} {{ [1, 2, 3] | sum }} {{ [1, 5, 3] | max }} {{ [4, 2] | min }} {{ [1, 2] | reverse | list }} {{ [1, 2, 3] | length }} {{ ['a', 'b'] | join(', ') }} {{ [1, 2] | join }}", {}),
    ("filters_select", "{{ ms | selectattr('role', 'equalto', 'user') | list | length }} {{ ms | rejectattr('role', 'eq', 'user') | map(attribute='role') | join(',') }} {{ [0, 1, 2, none] | select | list }} {{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3] | reject('even') | list }} {{ ['a', 'b'] | map('upper') | list }} {{ ms | map(attribute='role') | first }}", {"ms": MSGS}),
    ("filters_default", "{{ x | default('d') }} {{ '' | default('d') }} {{ '' | default('d', true) }} {{ none | default('d') }} {{ x | d('e') }} {{ y | default(5) }}", {"y": 0}),
    ("filters_numbers", "{{ -3 | abs }} {{ '12' | int }} {{ 'x' | int }} {{ '1.5' | float }} {{ 2.567 | round(2) }} {{ 2.5 | round }} {{ 3.2 | round(method='ceil') }} {{ 7 | float }}", {}),
    ("filters_dict", "{{ d | items | list }} {{ d | dictsort }} {{ d | length }} {{ d | list }}", {"d": {"b": 1, "a": 2}}),
    ("indent", "{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(4, true) }}|{{ 'a\\n\\nb' | indent(2, blank=true) }}", {}),
    ("tojson", "{{ tools | tojson }}\n{{ tools[0] | tojson(indent=4) }}\n{{ {'b': 1, 'a': [1.5, none, true, 'é\"\\\\\\n\\t\\u0001']} | tojson }}\n{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}\n{{ [] | tojson }}{{ {} | tojson(indent=2) }}{{ 'x' | tojson }}{{ 3 | tojson }}{{ 1e-7 | tojson }}", {"tools": TOOLS}),
    ("tojson_args", "{{ m.tool_calls[0].function.arguments | tojson }} {{ m.tool_calls[0].function.arguments | tojson(separators=(',', ':')) }}", {"m": MSGS[2]}),
    # methods
    ("str_methods", "{{ '  x  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '  x'.lstrip() }}|{{ 'x  '.rstrip() }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}|{{ 'aXa'.replace('a', 'b') }}|{{ 'hello'.find('l') }}{{ 'héllo'.find('l') }}{{ 'x'.find('z') }}|{{ 'a-b'.upper() }}|{{ ', '.join(['x', 'y']) }}|{{ 'l1\\nl2'.splitlines() }}|{{ 'abab'.count('ab') }}", {}),
    ("think_split", "{% set c = m.content %}{% if '</think>' in c %}{% set r = c.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}{% set c = c.split('</think>')[-1].lstrip('\\n') %}[{{ r }}]{% endif %}[{{ c }}]", {"m": MSGS[2]}),
    ("unicode_slicing", "{{ s[0] }}|{{ s[1:3] }}|{{ s | length }}|{{ s[-1] }}|{{ s.split(' ')[1] }}", {"s": "你好 世界 e\u0301"}),
    ("undefined_filters", "[{{ m.nope | trim }}][{{ m.nope | upper }}][{{ m.nope | length }}][{{ m.nope | join(',') }}][{{ m.nope | list }}][{{ m.nope | default('d') }}]", {"m": {}}),
    ("undefined_tojson", "{{ m.nope | tojson }}", {"m": {}}),
    # errors
    ("raise", "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation roles must alternate') }}{% endif %}ok", {"messages": MSGS}),
    ("undefined_attr_error", "{{ nothing.attr }}", {}),
    ("type_error", "{{ 'a' + 1 }}", {}),
    ("none_attr", "[{{ n.x }}]", {"n": None}),
    ("missing_key_subscript", "[{{ m['nope'] }}] {{ m['nope'] is defined }}", {"m": {"a": 1}}),
    ("out_of_range", "[{{ xs[5] }}] {{ xs[5] is defined }}", {"xs": [1]}),
    # a real-template shape: messages loop with system handling and generation prompt
    ("chat_shape", "{%- if messages[0]['role'] == 'system' %}{%- set system = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}{%- endif %}\n{{- bos_token }}\n{%- if system is defined %}{{- '<<SYS>>' + system | trim + '<</SYS>>\\n' }}{%- endif %}\n{%- for message in loop_messages %}\n    {%- if message.role == 'user' %}\n        {{- '[INST] ' + message.content | trim + ' [/INST]' }}\n    {%- elif message.role == 'assistant' %}\n        {{- ' ' + message.content | trim + eos_token }}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}{{ ' ' }}{% endif %}\n", {"messages": MSGS[:3], "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": True}),
]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], "w", encoding="utf-8") as out:
        for name, template, variables in CASES:
            row = {"name": name, "template": template, "vars": variables}
            try:
                row["text"] = _compile_jinja_template(template).render(**variables)
            except Exception:  # noqa: BLE001 - any error: the C++ side must fail too
                row["error"] = True
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"jinja_cases: {len(CASES)} cases")


if __name__ == "__main__":
    main()
