"""P3, polling economy: what waiting for a report costs, per async vendor, against the goals.

Computed, not timed: the state machine definition is synthesized from the CDK app (as ``make synth``
does, without bundling), the poll loop and its history events are read from it
(``report_exporter.local.polling``), and the waits come from the real RequestReport/CheckReport logic
with each adapter's cadence on a virtual clock. Lambda run time is not counted.

    .venv/bin/python bench/bench_polling.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "functions"), str(ROOT / "infra"), str(ROOT)]

from report_exporter.local.polling import poll_loop, state_machine_definition, wait_for  # noqa: E402
from report_exporter.local.runner import synthesize  # noqa: E402
from report_exporter.models.exports import HereExport, ParticleExport, load_exports  # noqa: E402
from report_exporter.vendors.here import adapter as here  # noqa: E402
from report_exporter.vendors.particle import adapter as particle  # noqa: E402

DAY = 24 * 60
VENDORS = {
    "Particle": (ParticleExport(name="particle-demo", secret_name="s"), particle.CADENCE),
    "HERE": (HereExport(name="here-demo", secret_name="s", realm="org123456789", detail_level="day"), here.CADENCE),
}


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def main() -> None:
    loop = poll_loop(state_machine_definition(synthesize(load_exports(ROOT / "infra" / "exports.toml"))))
    print(f"P3 polling economy (synthesized definition: one poll = {' -> '.join(loop.poll)}, "
          f"{loop.events_per_poll} history events; a run adds {loop.history_events(0)} more)\n")
    print("| vendor | goal | figure | verdict |")
    print("| --- | --- | --- | --- |")
    for name, (export, cadence) in VENDORS.items():
        ten = wait_for(export, cadence, ready_after=600, deadline_minutes=DAY)
        worst = max(wait_for(export, cadence, ready_after=s, deadline_minutes=DAY).found_late(s) for s in range(601))
        day = wait_for(export, cadence, ready_after=DAY * 60, deadline_minutes=DAY)
        six = wait_for(export, cadence, ready_after=None, deadline_minutes=360)
        events = loop.history_events(day.polls)
        planned = list(zip(day.poll_times, day.waits[1:], strict=False))
        after_hour = [w for t, w in planned if t > 3600 and t + w < DAY * 60]
        escalates = after_hour[0] > max(w for t, w in planned if t <= 3600) and max(after_hour) == cadence.cap
        rows = [
            ("ready at 10 min: found ≤ 60 s late", f"{ten.found_late(600):.0f} s late "
             f"(worst for ready ≤ 10 min: {worst:.0f} s)", ten.found_late(600) <= 60 and worst <= 60),
            ("ready at 10 min: ≤ 14 polls", f"{ten.polls} polls", ten.polls <= 14),
            ("pending 24 h: < 2,000 history events", f"{events:,} events", events < 2000),
            ("pending 24 h: ≤ 150 CheckReport invocations", f"{day.polls} invocations", day.polls <= 150),
            ("escalates past the first hour", f"waits {after_hour[0]} s at 1 h → {cadence.cap} s cap "
             f"(reached at {next(t for t, w in planned if w == cadence.cap) / 3600:.1f} h)", escalates),
        ]
        for goal, figure, ok in rows:
            print(f"| {name} | {goal} | {figure} | {verdict(ok)} |")
        print(f"| {name} | (6 h default deadline, never ready) | {six.polls} polls, "
              f"{six.polls * loop.events_per_poll:,} events in the loop | — |")
    print("\nA 429 or Retry-After still lengthens the next wait (tests/unit/logic/test_polling_economy.py).")


if __name__ == "__main__":
    main()
