"""Ring all-reduce: N devices sum their gradients in 2(N - 1) steps of one chunk each.

Each device cuts its vector into N chunks. In the reduce-scatter phase (N - 1 steps), at step t device
d sends chunk (d - t) mod N to device d + 1, which adds it to its own copy; afterwards device d holds
the full sum of chunk (d + 1) mod N. In the all-gather phase (N - 1 more steps), at step t device d
sends chunk (d + 1 - t) mod N, now complete, to device d + 1, which keeps it. Every device sends and
receives one chunk per step, so each moves 2(N - 1)/N of the vector whatever N is.

`ring_schedule` and `ring_allreduce` are pure (no matplotlib, no torch); `draw_ring_allreduce` draws
the schedule.
"""
from __future__ import annotations

from dataclasses import dataclass

from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from .primitives import COLORS, LINE, TEXT, arrow, box, canvas, finish, label

PHASES = ("reduce-scatter", "all-gather")


@dataclass(frozen=True)
class Transfer:
    """One device sending one chunk to the next device on the ring."""

    phase: str  # "reduce-scatter" (the receiver adds) or "all-gather" (the receiver keeps it)
    step: int  # 0 .. 2(N - 1) - 1 over both phases
    sender: int
    receiver: int
    chunk: int


def ring_schedule(devices: int) -> list[list[Transfer]]:
    """The transfers of each of the 2(devices - 1) steps of a ring all-reduce, one per device per step."""
    if devices < 2:
        raise ValueError(f"a ring all-reduce needs at least 2 devices, got {devices}")
    steps = []
    for step in range(2 * (devices - 1)):
        phase = PHASES[step // (devices - 1)]
        t = step % (devices - 1)
        offset = -t if phase == "reduce-scatter" else 1 - t
        steps.append([Transfer(phase, step, d, (d + 1) % devices, (d + offset) % devices)
                      for d in range(devices)])
    return steps


def ring_allreduce(chunks: list[list[float]]) -> list[list[float]]:
    """Run the schedule on numbers: `chunks[d][c]` is chunk c of device d; returns every device's chunks
    afterwards (all equal to the sums over devices when the schedule is right)."""
    state = [list(row) for row in chunks]
    for transfers in ring_schedule(len(state)):
        sent = [(t, state[t.sender][t.chunk]) for t in transfers]  # all sends of a step happen at once
        for t, value in sent:
            state[t.receiver][t.chunk] = value + state[t.receiver][t.chunk] if t.phase == PHASES[0] else value
    return state


def _contributions(devices: int) -> list[list[list[frozenset[int]]]]:
    """For the state before the first step and after each step: which devices' data each chunk holds."""
    state = [[frozenset({d}) for _ in range(devices)] for d in range(devices)]
    states = [state]
    for transfers in ring_schedule(devices):
        state = [list(row) for row in state]
        for t in transfers:
            sent = states[-1][t.sender][t.chunk]
            state[t.receiver][t.chunk] = sent | state[t.receiver][t.chunk] if t.phase == PHASES[0] else sent
        states.append(state)
    return states


def _panel(ax, x: float, y: float, state, transfers, title: str, cell: float) -> None:
    """One state as a grid, a row per device and a column per chunk, shaded by how many devices' data
    each chunk already sums; the step's transfers as arrows from sender to receiver."""
    devices = len(state)
    label(ax, x + devices * cell / 2, y + 0.12, title, fontsize=7.5)
    for d in range(devices):
        for c in range(devices):
            held = state[d][c]
            text = "all" if len(held) == devices else "+".join(str(i) for i in sorted(held))
            shade = to_rgba(COLORS["conv"], 0.15 + 0.85 * (len(held) - 1) / (devices - 1))
            box(ax, x + c * cell, y - (d + 1) * cell, cell * 0.92, cell * 0.88, shade, text, fontsize=6,
                text_color="white" if len(held) == devices else TEXT)
    for t in transfers:
        cx = x + t.chunk * cell + cell * 0.46
        start, end = y - (t.sender + 0.5) * cell, y - (t.receiver + 0.5) * cell
        bend = 0.0 if t.receiver == t.sender + 1 else -0.35  # the ring closes from the last device
        arrow(ax, (cx + cell * 0.3, start - cell * 0.2), (cx + cell * 0.3, end + cell * 0.2), curve=bend,
              color=COLORS["lrn"], width=1.0)


def draw_ring_allreduce(devices: int = 4) -> Figure:
    """Ring all-reduce on `devices` devices: the state of every chunk before the first step and after
    each of the 2(N - 1) steps, reduce-scatter in the top row and all-gather in the bottom one."""
    schedule, states = ring_schedule(devices), _contributions(devices)
    cell = min(0.42, 1.75 / devices)
    width = devices * cell + 0.25
    fig, ax = canvas(max(8.0, devices * width + 0.3), 2 * (devices * cell + 0.45) + 0.1)
    top = devices * cell + 0.5
    for k in range(devices):  # the start, then the N - 1 reduce-scatter steps
        title = "start: device d holds d" if k == 0 else f"step {k} (reduce-scatter)"
        _panel(ax, 0.25 + k * width, 2 * top - 0.35, states[k], schedule[k - 1] if k else [], title, cell)
    for k in range(devices - 1):
        step = devices + k
        _panel(ax, 0.25 + (k + 1) * width, top - 0.35, states[step], schedule[step - 1],
               f"step {step} (all-gather)", cell)
    label(ax, 0.25, top - 0.35 - devices * cell / 2,
          "rows: devices 0..N-1\ncolumns: chunks\narrow: the chunk\nsent this step,\nd → d + 1",
          fontsize=7, ha="left", color=LINE)
    return finish(fig)
