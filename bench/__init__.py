"""Benchmarks (not part of `make test`): the outreach benchmark, `make bench-outreach`.

* book: a generated loan book in a fresh database and the day's planning, timed
  (``python -m bench.book --loans 100000``);
* delivery: the book, planning and delivery through the real Rasa and action server to fake WeChat
  and Twilio servers, with the report (``python -m bench.delivery``);
* stack, fakes, report: the processes it starts, the fake channel APIs, the report and its checks.
"""
