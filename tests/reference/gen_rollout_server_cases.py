#!/usr/bin/env python3
"""A messages file and recorded vLLM /v1/completions replies for `star rollout` against a server.

The conversations cover what a rollout meets: tool calls (plain and OpenAI-wrapped tools),
text replies, a multi-turn exchange with a tool result, rows that pass through, a conversation
whose every completion fails STAR's format check. Each reply holds the n = 4 completions
written below for that conversation's prompt, in the response schema vLLM documents for
/v1/completions (id, object "text_completion", created, model, choices with index, text,
logprobs, finish_reason, stop_reason, prompt_logprobs, usage). The prompt is rendered by
prepare_ref.py's jinja2 (as transformers renders it) so that the server can look replies up
by the prompt it is sent.
Usage: gen_rollout_server_cases.py TOKENIZER_CONFIG.json MESSAGES_OUT.jsonl RESPONSES_OUT.jsonl
"""
import hashlib
import json
import sys

from prepare_ref import compile_template, convert, special_tokens

WEATHER = {"name": "get_weather", "description": "Current weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                          "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                          "required": ["city"]}}
ALARM = {"type": "function", "function": {"name": "set_alarm", "description": "Set an alarm",
                                          "parameters": {"type": "object", "properties": {"time": {"type": "string"},
                                                                                         "label": {"type": "string"}}}}}
CONVERT = {"name": "convert_currency", "description": "Convert money",
           "parameters": {"type": "object", "properties": {"amount": {"type": "number"}, "from": {"type": "string"},
                                                          "to": {"type": "string"}}}}


def call(name, args):
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}, ensure_ascii=False) + "\n</tool_call>"


CASES = [
    ({"id": "weather-1", "messages": [
        {"role": "user", "content": "What's the weather in Paris, in celsius?"},
        {"role": "assistant", "content": None, "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}]}],
      "tools": [WEATHER, CONVERT]},
     ["<think>\nThe user wants the weather in Paris in celsius.\n</think>\n\n" + call("get_weather", {"city": "Paris", "unit": "celsius"}),
      "<think>\nThe user wants the weather in Paris in celsius.\n</think>\n\n<tool_call>\n{\"arguments\": {\"unit\": \"celsius\", \"city\": \"Paris\"}, \"name\": \"get_weather\"}\n</tool_call>",
      "<think>\nParis.\n</think>\n\n" + call("get_weather", {"city": "Paris, France"}),
      "<think>\nI'll look it up.\n</think>\n\n" + call("get_forecast", {"city": "Paris"})]),
    ({"id": "hello-2", "source": "chitchat", "messages": [
        {"role": "system", "content": "You are a friendly assistant."},
        {"role": "user", "content": "Say hi"},
        {"role": "assistant", "content": "Hello! How can I help you today?", "reasoning_content": "A greeting."}]},
     ["<think>\nA greeting is enough.\n</think>\n\nHello! How can I help you today?",
      "<think>\nA greeting is enough.\n</think>\n\nHello! How can I help you today?",
      "Just greet back.\n</think>\n\nHi there! What can I do for you?",
      "<think>\nHmm\n</think>\n<think>\nagain\n</think>\nHello"]),
    ({"id": "alarm-3", "messages": [
        {"role": "user", "content": "Wake me at 7:30, label it gym"},
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "set_alarm", "arguments": {"time": "07:30", "label": "gym"}}}]}],
      "tools": [ALARM, WEATHER]},
     ["<think>\nSet the alarm.\n</think>\n\n" + call("set_alarm", {"time": "07:30", "label": "gym"}),
      "<think>\nSet the alarm.\n</think>\n\n" + call("set_alarm", {"time": "7:30"}),
      "<think>\nSet the alarm.\n</think>\n\n" + call("set_alarm", {"time": "07:30", "snooze": True}),
      "<think>\n</think>\n\n" + call("set_alarm", {"time": "07:30", "label": "gym"}) + "\n" + call("get_weather", {"city": "here"})]),
    ({"id": "pass-4", "messages": [{"role": "user", "content": "a question nobody answered yet"}], "tools": [WEATHER]},
     None),
    ({"id": "convert-5", "messages": [
        {"role": "user", "content": "How much is 100 euros in dollars?"},
        {"role": "assistant", "content": None, "tool_calls": [{"name": "convert_currency", "arguments": {"amount": 100, "from": "EUR", "to": "USD"}}]},
        {"role": "tool", "content": "{\"amount\": 108.3, \"currency\": \"USD\"}"},
        {"role": "assistant", "content": "100 euros are about 108.30 US dollars.", "reasoning_content": "Report the result."}],
      "tools": [CONVERT]},
     ["<think>\nThe tool says 108.3 USD.\n</think>\n\n100 euros are about 108.30 US dollars.",
      "<think>\nThe tool says 108.3 USD.\n</think>\n\nThat is 108.3 USD.",
      "<think>\nThe tool says 108.3 USD.\n</think>\n\n" + call("convert_currency", {"amount": 100.0, "from": "EUR", "to": "USD"}),
      "<think>\nThe tool says 108.3 USD.</think>\n\n100 euros are about 108.30 US dollars."]),
    ({"note": "no messages at all"}, None),
    ({"id": "junk-6", "messages": [
        {"role": "user", "content": "What's the weather in Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}]}],
      "tools": [WEATHER]},
     ["<think>a</think><think>b</think>", "<think>\n" + call("get_weather", {"city": "Rome"}),
      "<think>x</think>" + "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}</tool_call>",
      "<think>x</think>" + call("get_weather", {"town": "Rome"})]),
    ({"messages": [
        {"role": "user", "content": "Météo à Zürich ? 天气"},
        {"role": "assistant", "content": None, "tool_calls": [{"name": "get_weather", "arguments": {"city": "Zürich"}}]}],
      "tools": [WEATHER], "id": 7, "meta": {"weight": 1.0, "big": 12345678901234567890}},
     ["<think>\nZürich, 天气 means weather.\n</think>\n\n" + call("get_weather", {"city": "Zürich"}),
      "<think>\nZürich.\n</think>\n\n" + call("get_weather", {"city": "Zurich", "unit": "celsius"}),
      "<think>\nZürich, 天气 means weather.\n</think>\n\n" + call("get_weather", {"city": "Zürich"}),
      "<think>\nZürich.\n</think>\n\nIch brauche mehr Informationen."]),
]


def response(prompt, texts, n_prompt_tokens):
    choices = [{"index": i, "text": t, "logprobs": None, "finish_reason": "stop", "stop_reason": None,
                "token_ids": None, "prompt_logprobs": None, "prompt_token_ids": None} for i, t in enumerate(texts)]
    return {"id": "cmpl-" + hashlib.md5(prompt.encode()).hexdigest()[:16], "object": "text_completion", "created": 1767225600,
            "model": "teacher", "choices": choices, "service_tier": None, "system_fingerprint": None,
            "usage": {"prompt_tokens": n_prompt_tokens, "total_tokens": n_prompt_tokens + 40 * len(texts),
                      "completion_tokens": 40 * len(texts), "prompt_tokens_details": None},
            "kv_transfer_params": None}


def main(config_path, messages_out, responses_out):
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    template = compile_template(config["chat_template"])
    specials = special_tokens(config)
    with open(messages_out, "w", encoding="utf-8") as fm, open(responses_out, "w", encoding="utf-8") as fr:
        for row, texts in CASES:
            fm.write(json.dumps(row, ensure_ascii=False) + "\n")
            if texts is None:
                continue
            prompt = convert(row, template, specials, False)["inputs"][:-len("<think>")]
            rec = {"prompt": prompt, "response": response(prompt, texts, len(prompt) // 4)}
            fr.write(json.dumps(rec, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
