#!/usr/bin/env python3
"""Conversations for the chat-template parity test (tests/parity/chat_template_parity.py).

    chat_conversations.py FAMILY OUT.jsonl
        Writes a deterministic (seeded) set of conversations for one template family, one JSON
        object per line: {"messages": [...], optional "tools": [...], optional
        "chat_template_kwargs": {...}}. Every row renders without raise_exception under the
        family's published template (tests/fixtures/chat_templates/FAMILY.jinja).
    chat_conversations.py --families
        Prints the family names, one a line.

What the rows cover: no system message, one, or several; one to six turns; tool definitions
(OpenAI function schemas as transformers takes them) with nested objects, enums, unicode and
float/bool/null values; assistant tool calls in the argument shape each template renders
(a dict for the tojson templates, a JSON string for the DeepSeek templates that concatenate
it); tool results; unicode (CJK, emoji, combining marks, right-to-left); empty content;
whitespace the Llama template trims; text that looks like Jinja or like special tokens;
assistant content with <think>...</think> reasoning (stripped by the R1 templates, split into
reasoning by Qwen3); Qwen3 enable_thinking true/false and reasoning_content; Llama 3.1
date_string, tools_in_user_message=false and builtin_tools.

The per-family argument shapes and restrictions come from the templates themselves:
  qwen2_5_instruct  tool_call.arguments | tojson (dict); content concatenated, so str only
                    (an assistant turn with tool_calls may have empty content).
  qwen3             arguments as dict or as a pre-serialised string; content may be None.
  llama3_1_instruct exactly one tool call per assistant turn (else raise_exception);
                    arguments | tojson; builtin tools need string argument values; tools need
                    a message after the system one (else raise_exception).
  deepseek_r1       'tool_calls' in message; arguments concatenated (str); content None or
                    str with tool calls, str without.
  deepseek_v3 / deepseek_r1_distill_qwen
                    tool calls only render when content is None (str content hides them).
"""
import json
import random
import sys

FAMILIES = ["qwen2_5_instruct", "qwen3", "llama3_1_instruct", "deepseek_r1",
            "deepseek_r1_distill_qwen", "deepseek_v3"]
PER_FAMILY = 80

# ------------------------------------------------------------------------------------------
# Text pools

SENTENCES = [
    "What is 17 * 23?",
    "Explain the difference between a list and a tuple in Python.",
    "Summarize the plot of Hamlet in two sentences.",
    "Can you help me plan a trip to Kyoto?",
    "Write a haiku about autumn leaves.",
    "Solve for x: 3x + 5 = 20.",
    "How do I reverse a linked list?",
    "Give me three synonyms for 'happy'.",
    "The answer is 42.",
    "Sure! Here is a short explanation.",
    "I'm not sure, could you clarify what you mean?",
    "Let's think step by step.",
    "def f(x):\n    return x ** 2\n",
    "$\\frac{1}{2} + \\sqrt{x^2}$ equals what when x = 3?",
    "First line\nSecond line\n\nFourth line after a blank one.",
    "Tabs\tand\tspaces   mixed  here.",
    "Windows line ending\r\nand a second line.",
    "Quotes: \"double\", 'single', and `back`.",
    "Backslashes \\ and \\n (not a newline) and \\u00e9.",
    "Jinja-looking text: {{ not_a_variable }} {% if x %}y{% endif %} {# comment #}",
    "Raw-ish: {% raw %}keep{% endraw %} and {{'{{'}}",
    "HTML-ish: <b>bold</b> & <i>italic</i> < > &amp;",
    "Numbers: 1,234,567.89 and -0.5e-10 and 0x1F.",
    "A very long sentence " + "with many repeated words " * 12 + "ends here.",
]
UNICODE = [
    "你好，世界！今天天气很好。",
    "请用中文解释一下量子纠缠。",
    "日本語のテキスト、ひらがなとカタカナ。",
    "한국어 문장입니다. 안녕하세요!",
    "Emoji time 😀👍🏽👨‍👩‍👧‍👦🇫🇷❤️🤖",
    "Combining marks: e\u0301 A\u030a a\u0323\u0302 o\u0308\u0304 \u1100\u1161\u11a8",
    "Precomposed vs decomposed: café / cafe\u0301, Ångström / A\u030angstro\u0308m",
    "مرحبا بالعالم، كيف حالك اليوم؟",
    "שָׁלוֹם עוֹלָם! מה שלומך?",
    "Mixed direction: English then العربية then English again.",
    "Привет, мир! Ελληνικά κείμενα.",
    "हिन्दी में एक वाक्य। ไทย ภาษา",
    "Math symbols ∑ ∫ → ≤ ≥ ½ ² ① Ⅻ １２３",
    "Zero width\u200bjoiner\u200dand nbsp\u00a0and ideographic\u3000space.",
]
TRIM_EDGES = ["  padded with spaces  ", "\n\nleading newlines", "trailing newlines\n\n",
              "\t tab and space \t", " \n mixed \n "]
SPECIAL_LOOKING = [
    "Does <|im_end|> end the turn?",
    "Text with <think> inside a user message </think> here.",
    "Pretend tags: <tool_call> and </tool_call>",
    "<|eot_id|> in the middle",
    "Full-width bars <｜User｜> and <｜Assistant｜>",
    "<tool_response>\nlooks like a tool response\n</tool_response>",
]
REASONING = [
    "The user wants a product. 17 * 23 = 391.",
    "Let me recall the facts.\nThen check them twice.",
    "思考：先计算，再检查。",
    "",
    "\nLeading and trailing newlines\n",
]


def text(rng, kind=None):
    kind = kind or rng.choice(["en", "en", "en", "uni", "uni", "trim", "special", "mix"])
    if kind == "en":
        return rng.choice(SENTENCES)
    if kind == "uni":
        return rng.choice(UNICODE)
    if kind == "trim":
        return rng.choice(TRIM_EDGES) + rng.choice(SENTENCES[:8])
    if kind == "special":
        return rng.choice(SPECIAL_LOOKING)
    return rng.choice(SENTENCES) + " " + rng.choice(UNICODE)


def thinking_answer(rng):
    """Assistant content carrying reasoning, in the shapes models emit."""
    r = rng.choice(REASONING)
    a = text(rng, rng.choice(["en", "uni"]))
    shape = rng.randrange(4)
    if shape == 0:
        return f"<think>\n{r}\n</think>\n\n{a}"
    if shape == 1:
        return f"<think>{r}</think>{a}"
    if shape == 2:
        return f"{r}\n</think>\n\n{a}"  # prefilled <think>: only the closing tag is generated
    return f"<think>\n{r}\n</think>\n\n{a}\n</think> trailing second close"

# ------------------------------------------------------------------------------------------
# Tools


TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "City name, e.g. Paris"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"}},
            "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression and return a number.",
        "parameters": {"type": "object", "properties": {
            "expression": {"type": "string"},
            "precision": {"type": "integer", "minimum": 0, "maximum": 12, "default": 2},
            "tolerance": {"type": "number", "default": 0.5}},
            "required": ["expression"]}}},
    {"type": "function", "function": {
        "name": "translate",
        "description": "Übersetzt Text — 翻译文本 — ترجمة النص 🌍",
        "parameters": {"type": "object", "properties": {
            "text": {"type": "string", "description": "Text to translate (any script: 中文, العربية, עברית)"},
            "target": {"type": "string", "enum": ["zh", "ja", "ar", "he", "fr"]}},
            "required": ["text", "target"]}}},
    {"type": "function", "function": {
        "name": "create_event",
        "description": "Create a calendar event with attendees and options.",
        "parameters": {"type": "object", "properties": {
            "title": {"type": "string"},
            "start": {"type": "string", "format": "date-time"},
            "duration_hours": {"type": "number", "default": 1.25},
            "attendees": {"type": "array", "items": {"type": "object", "properties": {
                "email": {"type": "string"}, "optional": {"type": "boolean", "default": False}}}},
            "reminder": {"type": ["integer", "null"], "default": None}},
            "required": ["title", "start"]}}},
    {"type": "function", "function": {
        "name": "list_files",
        "description": "List files in the working directory.",
        "parameters": {"type": "object", "properties": {}, "required": []}}},
]
BUILTIN_TOOLS = ["brave_search", "wolfram_alpha"]


def tool_args(rng, name):
    if name == "get_weather":
        return {"city": rng.choice(["Paris", "東京", "São Paulo", "Zürich", "القاهرة"]),
                "unit": rng.choice(["celsius", "fahrenheit"])}
    if name == "calculator":
        return {"expression": rng.choice(["17 * 23", "(1 + 2) / 3", "2 ** 10", "sqrt(2)"]),
                "precision": rng.choice([0, 2, 6]), "tolerance": rng.choice([0.5, 0.001, 2.0, -1.25])}
    if name == "translate":
        return {"text": rng.choice(["Good morning", "Line one\nLine two", "He said \"hi\" \\o/"]),
                "target": rng.choice(["zh", "ja", "ar", "he", "fr"])}
    if name == "create_event":
        return {"title": rng.choice(["Stand-up", "Lunch 🍜", "Review — Q3"]),
                "start": "2025-03-14T09:30:00Z", "duration_hours": rng.choice([0.5, 1.0, 1.25]),
                "attendees": [{"email": "a@example.com", "optional": False},
                              {"email": "b@example.com", "optional": True}],
                "reminder": rng.choice([None, 10, 30])}
    return {}


TOOL_RESULTS = {
    "get_weather": ['{"temperature": 21.5, "condition": "sunny"}', "22 °C, light rain 🌧️",
                    '{"temperature": -3, "condition": "雪"}'],
    "calculator": ["391", "1.0", '{"result": 1024, "exact": true}', "1.414214"],
    "translate": ["早上好", "おはようございます", "صباح الخير", "בוקר טוב", "Bonjour"],
    "create_event": ['{"id": "evt_123", "status": "created"}', "Event created.\nID: evt_456"],
    "list_files": ["README.md\nsrc/\ntests/", "", "[]"],
}


def pick_tools(rng):
    k = rng.randint(1, len(TOOLS))
    return [json.loads(json.dumps(t)) for t in rng.sample(TOOLS, k)]


def call(rng, tools, shape):
    """One tool call for a tool in `tools`; shape: dict | str | flat | flat_str."""
    name = rng.choice(tools)["function"]["name"]
    args = tool_args(rng, name)
    if shape in ("str", "flat_str"):
        args = json.dumps(args, ensure_ascii=rng.random() < 0.3)
    fn = {"name": name, "arguments": args}
    if shape.startswith("flat"):
        return fn, name
    return {"type": "function", "function": fn}, name


def result(rng, name):
    return rng.choice(TOOL_RESULTS[name])

# ------------------------------------------------------------------------------------------
# Conversation builders


def maybe_system(rng, p=0.6):
    if rng.random() < p:
        return [{"role": "system", "content": rng.choice([
            "You are a helpful assistant.", "You are a concise math tutor. Answer briefly.",
            "Réponds en français.", "你是一个乐于助人的助手。", "",
            "  System prompt with surrounding whitespace.  \n"])}]
    return []


def chat_turns(rng, n_turns, answer, end_with_user):
    msgs = []
    for t in range(n_turns):
        msgs.append({"role": "user", "content": text(rng)})
        if t < n_turns - 1 or not end_with_user:
            msgs.append({"role": "assistant", "content": answer(rng)})
    return msgs


def plain_answer(rng):
    return text(rng, rng.choice(["en", "en", "uni", "trim", "mix"]))


def row(messages, tools=None, kwargs=None):
    r = {"messages": messages}
    if tools is not None:
        r["tools"] = tools
    if kwargs:
        r["chat_template_kwargs"] = kwargs
    return r


def base_rows(rng, answer):
    """Plain chats every template renders: shared by all families."""
    rows = []
    rows.append(row([{"role": "user", "content": "Hello!"}]))
    rows.append(row([{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": "Hi there"}]))
    rows.append(row([{"role": "user", "content": ""}]))
    rows.append(row([{"role": "system", "content": ""}, {"role": "user", "content": ""},
                     {"role": "assistant", "content": ""}]))
    rows.append(row([{"role": "user", "content": u} for u in UNICODE[:1]] +
                    [{"role": "assistant", "content": UNICODE[4]},
                     {"role": "user", "content": UNICODE[7]},
                     {"role": "assistant", "content": UNICODE[8]},
                     {"role": "user", "content": UNICODE[5]}]))
    rows.append(row([{"role": "user", "content": s} for s in SPECIAL_LOOKING[:1]]))
    rows.append(row([{"role": "user", "content": SENTENCES[19]},
                     {"role": "assistant", "content": SENTENCES[20]}]))
    for _ in range(16):
        n = rng.randint(1, 6)
        msgs = maybe_system(rng) + chat_turns(rng, n, answer, end_with_user=rng.random() < 0.6)
        rows.append(row(msgs))
    return rows


def tool_flow(rng, tools, shape, content_for_call, n_calls=1, final=True, more_turns=0):
    """user -> assistant(tool_calls) -> tool results -> assistant answer [-> user ...]."""
    msgs = [{"role": "user", "content": text(rng, rng.choice(["en", "uni"]))}]
    calls, names = [], []
    for _ in range(n_calls):
        c, name = call(rng, tools, shape)
        calls.append(c)
        names.append(name)
    msgs.append({"role": "assistant", "content": content_for_call(rng), "tool_calls": calls})
    for name in names:
        msgs.append({"role": "tool", "content": result(rng, name)})
    if final:
        msgs.append({"role": "assistant", "content": text(rng, rng.choice(["en", "uni"]))})
    for _ in range(more_turns):
        msgs.append({"role": "user", "content": text(rng)})
        if rng.random() < 0.5:
            msgs.append({"role": "assistant", "content": plain_answer(rng)})
    return msgs

# ------------------------------------------------------------------------------------------
# Families


def gen_qwen2_5_instruct(rng):
    rows = base_rows(rng, plain_answer)
    # thinking-looking assistant text is passed through verbatim
    for _ in range(4):
        rows.append(row(maybe_system(rng) + chat_turns(rng, rng.randint(1, 3), lambda r: thinking_answer(r),
                                                        end_with_user=True)))
    # system message not first (rendered as a normal turn)
    rows.append(row([{"role": "user", "content": "Hi"}, {"role": "system", "content": "Late system note."},
                     {"role": "user", "content": "Continue"}]))
    content_opts = lambda r: r.choice(["", "", "Let me check that for you.", "好的，我来查一下。"])
    while len(rows) < PER_FAMILY:
        tools = pick_tools(rng)
        kind = rng.randrange(6)
        if kind == 0:      # tools given, no tool use
            msgs = maybe_system(rng) + chat_turns(rng, rng.randint(1, 3), plain_answer, True)
        else:
            shape = rng.choice(["dict", "dict", "dict", "flat"])
            msgs = maybe_system(rng) + tool_flow(rng, tools, shape, content_opts,
                                                 n_calls=rng.choice([1, 1, 2, 3]),
                                                 final=rng.random() < 0.7, more_turns=rng.randint(0, 2))
        rows.append(row(msgs, tools=tools if rng.random() < 0.9 else None))
    return rows[:PER_FAMILY]


def gen_qwen3(rng):
    rows = base_rows(rng, plain_answer)
    think_kw = lambda r: r.choice([None, None, {"enable_thinking": True}, {"enable_thinking": False}])
    for r_ in rows:
        kw = think_kw(rng)
        if kw:
            r_["chat_template_kwargs"] = kw
    # reasoning in content and in reasoning_content, after and before the last user query
    for _ in range(10):
        msgs = maybe_system(rng) + chat_turns(rng, rng.randint(1, 4), thinking_answer,
                                              end_with_user=rng.random() < 0.5)
        rows.append(row(msgs, kwargs=think_kw(rng)))
    for _ in range(4):
        msgs = [{"role": "user", "content": text(rng)},
                {"role": "assistant", "content": plain_answer(rng), "reasoning_content": rng.choice(REASONING)}]
        if rng.random() < 0.5:
            msgs += [{"role": "user", "content": text(rng)},
                     {"role": "assistant", "content": plain_answer(rng), "reasoning_content": rng.choice(REASONING)}]
        rows.append(row(maybe_system(rng) + msgs, kwargs=think_kw(rng)))
    # user message that is a wrapped tool response (multi_step_tool detection)
    rows.append(row([{"role": "user", "content": "Check the weather"},
                     {"role": "assistant", "content": "<think>\nneed tool\n</think>\n\nCalling.",
                      "tool_calls": [{"type": "function", "function": {"name": "get_weather",
                                                                       "arguments": {"city": "Paris"}}}]},
                     {"role": "user", "content": "<tool_response>\nsunny\n</tool_response>"},
                     {"role": "assistant", "content": "<think>\nsunny, so\n</think>\n\nIt is sunny."}],
                    tools=[TOOLS[0]]))
    rows.append(row([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None,
                                                        "tool_calls": [{"type": "function", "function": {
                                                            "name": "list_files", "arguments": {}}}]},
                     {"role": "tool", "content": "README.md"}], tools=[TOOLS[4]]))
    content_opts = lambda r: r.choice(["", "", None, "Let me check.", "<think>\nI should call a tool.\n</think>\n\n",
                                       "<think>\n调用工具\n</think>\n\n好的。"])
    while len(rows) < PER_FAMILY:
        tools = pick_tools(rng)
        shape = rng.choice(["dict", "dict", "str", "flat", "flat_str"])
        msgs = maybe_system(rng) + tool_flow(rng, tools, shape, content_opts,
                                             n_calls=rng.choice([1, 1, 2]), final=rng.random() < 0.7,
                                             more_turns=rng.randint(0, 2))
        if rng.random() < 0.4:  # final answer with reasoning
            for m in reversed(msgs):
                if m["role"] == "assistant" and "tool_calls" not in m:
                    m["content"] = thinking_answer(rng)
                    break
        rows.append(row(msgs, tools=tools if rng.random() < 0.9 else None, kwargs=think_kw(rng)))
    return rows[:PER_FAMILY]


def gen_llama3_1_instruct(rng):
    dates = ["26 Jul 2024", "01 Jan 2025", "29 Feb 2028", "3 März 2025"]
    rows = base_rows(rng, plain_answer)
    for r_ in rows:
        if rng.random() < 0.4:
            r_["chat_template_kwargs"] = {"date_string": rng.choice(dates)}
    for _ in range(4):
        rows.append(row(maybe_system(rng) + chat_turns(rng, rng.randint(1, 3), thinking_answer, True),
                        kwargs={"date_string": rng.choice(dates)} if rng.random() < 0.5 else None))
    # trim-sensitive content everywhere
    rows.append(row([{"role": "system", "content": "  \n sys with edges \n  "},
                     {"role": "user", "content": "\n\n  user with edges \t"},
                     {"role": "assistant", "content": "  answer with edges  \n"}]))
    while len(rows) < PER_FAMILY:
        tools = pick_tools(rng)
        kind = rng.randrange(7)
        kw = {}
        if rng.random() < 0.4:
            kw["date_string"] = rng.choice(dates)
        if kind == 0:  # tools given, plain chat (tools go into the first user message)
            msgs = maybe_system(rng) + chat_turns(rng, rng.randint(1, 3), plain_answer, True)
        elif kind == 1:  # tools in the system message
            kw["tools_in_user_message"] = False
            msgs = maybe_system(rng) + tool_flow(rng, tools, "dict", lambda r: "", final=rng.random() < 0.7,
                                                 more_turns=rng.randint(0, 1))
        elif kind == 2:  # builtin tools (ipython environment, <|python_tag|> and <|eom_id|>)
            kw["builtin_tools"] = rng.choice([BUILTIN_TOOLS, ["brave_search", "code_interpreter"],
                                              ["wolfram_alpha"]])
            name = rng.choice(kw["builtin_tools"])
            query = rng.choice(["weather in Paris", "integral of x^2", "东京 天气"])
            msgs = maybe_system(rng) + [
                {"role": "user", "content": text(rng)},
                {"role": "assistant", "tool_calls": [{"type": "function", "function": {
                    "name": name, "arguments": {"query": query}}}]},
                {"role": "ipython" if rng.random() < 0.5 else "tool", "content": result(rng, "get_weather")},
                {"role": "assistant", "content": plain_answer(rng)}]
            if rng.random() < 0.5:
                tools = None  # builtin tools only
        else:  # custom tools, single call per assistant turn; tool content str or dict
            msgs = maybe_system(rng) + tool_flow(rng, tools, "dict",
                                                 lambda r: r.choice(["", "Calling a tool."]),
                                                 n_calls=1, final=rng.random() < 0.7, more_turns=rng.randint(0, 2))
            for m in msgs:
                if m["role"] == "tool" and rng.random() < 0.3:
                    m["content"] = {"result": m["content"], "ok": True, "score": 0.75}
            if rng.random() < 0.3:  # assistant turn carrying tool_calls without a content key
                for m in msgs:
                    if "tool_calls" in m:
                        del m["content"]
        rows.append(row(msgs, tools=tools, kwargs=kw or None))
    return rows[:PER_FAMILY]


def _deepseek(rng, family):
    """R1 (tool_calls + optional content), V3 and distill (content None renders the calls)."""
    think = family in ("deepseek_r1", "deepseek_r1_distill_qwen")
    rows = base_rows(rng, thinking_answer if think else plain_answer)
    # several system messages: R1/V3 join them with a blank line, the distill keeps the last
    rows.append(row([{"role": "system", "content": "First system."}, {"role": "user", "content": "Hi"},
                     {"role": "system", "content": "Second system, 第二。"},
                     {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}]))
    for _ in range(6):
        rows.append(row(maybe_system(rng) + chat_turns(rng, rng.randint(1, 4), thinking_answer,
                                                       end_with_user=rng.random() < 0.6)))
    while len(rows) < PER_FAMILY:
        tools = pick_tools(rng)
        kind = rng.randrange(5)
        if family == "deepseek_r1":
            content_fn = lambda r: r.choice([None, None, "", "Let me look that up.", "我来查一下。"])
        elif kind == 4:
            content_fn = lambda r: r.choice(["I would call a tool here.", ""])  # str content hides the calls
        else:
            content_fn = lambda r: None
        msgs = maybe_system(rng) + tool_flow(rng, tools, "str", content_fn, n_calls=rng.choice([1, 1, 2, 3]),
                                             final=rng.random() < 0.8, more_turns=rng.randint(0, 2))
        if rng.random() < 0.3:  # a second tool round in the same conversation
            msgs.append({"role": "user", "content": text(rng)})
            c, name = call(rng, tools, "str")
            msgs.append({"role": "assistant", "content": content_fn(rng), "tool_calls": [c]})
            msgs.append({"role": "tool", "content": result(rng, name)})
            msgs.append({"role": "assistant", "content": thinking_answer(rng) if think else plain_answer(rng)})
        if think and rng.random() < 0.5:
            for m in msgs:
                if m["role"] == "assistant" and isinstance(m.get("content"), str) and "tool_calls" not in m:
                    m["content"] = thinking_answer(rng)
        rows.append(row(msgs, tools=tools if rng.random() < 0.5 else None))
    return rows[:PER_FAMILY]


GENERATORS = {
    "qwen2_5_instruct": gen_qwen2_5_instruct,
    "qwen3": gen_qwen3,
    "llama3_1_instruct": gen_llama3_1_instruct,
    "deepseek_r1": lambda rng: _deepseek(rng, "deepseek_r1"),
    "deepseek_r1_distill_qwen": lambda rng: _deepseek(rng, "deepseek_r1_distill_qwen"),
    "deepseek_v3": lambda rng: _deepseek(rng, "deepseek_v3"),
}
SEEDS = {name: 1000 + i for i, name in enumerate(FAMILIES)}


def conversations(family):
    if family not in GENERATORS:
        raise KeyError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    return GENERATORS[family](random.Random(SEEDS[family]))


def main(argv):
    if argv[1:] == ["--families"]:
        print("\n".join(FAMILIES))
        return 0
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    family, out = argv[1], argv[2]
    try:
        rows = conversations(family)
    except KeyError as e:
        print(f"chat_conversations.py: {e.args[0]}", file=sys.stderr)
        return 2
    with open(out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{family}: {len(rows)} conversations -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
