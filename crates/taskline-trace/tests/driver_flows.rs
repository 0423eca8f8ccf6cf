//! Flow arrows from the runtime's I/O driver and timer (trace format 4):
//! a `Wake` from a worker thread outside any poll, which the core's
//! wake-reason rule (`ThreadRoles::wake_reason`) calls `io` or `timer`,
//! starts an arrow on that worker's track (an `io wake` / `timer wake`
//! instant) that ends at the woken task's next poll. Controlled event
//! streams, written by the writer and read back by the reader.

use std::sync::Arc;

use taskline_core::{Event, EventKind, NO_VALUE, Registry, Sink, flags};
use taskline_trace::{
    FlowArrow, FlowStart, PerfettoWriter, TraceOptions, encode_trace, read_trace,
};

/// Thread 0 and 1 are workers; thread 2 is a plain thread.
const W0: u16 = 0;
const W1: u16 = 1;
const PLAIN: u16 = 2;
/// The woken task.
const TASK: u64 = 9;

fn ev(kind: EventKind, ts: u64, task: u64, thread: u16) -> Event {
    let mut e = Event::new(kind, ts, task);
    e.thread = thread;
    match kind {
        EventKind::PollStart => {
            e.arg = NO_VALUE;
            e.aux = u32::from(thread);
        }
        EventKind::PollEnd | EventKind::Park | EventKind::Unpark => e.aux = u32::from(thread),
        _ => {}
    }
    e
}

fn wake(ts: u64, task: u64, by: u64, thread: u16) -> Event {
    let mut e = ev(EventKind::Wake, ts, task, thread);
    e.arg = by;
    e
}

/// A registry naming `Sleep` (string 0) and `Semaphore` (string 1).
fn registry() -> Registry {
    Registry::from_parts(
        vec![Arc::from("Sleep"), Arc::from("Semaphore")],
        Vec::new(),
        Vec::new(),
    )
}

fn resource_wait(ts: u64, task: u64, thread: u16, kind: u32) -> Event {
    let mut e = ev(EventKind::ResourceWait, ts, task, thread);
    e.aux = kind;
    e
}

/// The task polls on worker 1 (waiting on `waits_on`, if any) and goes idle.
fn first_poll(waits_on: Option<u32>) -> Vec<Event> {
    let mut v = vec![
        ev(EventKind::Spawn, 1, TASK, W1),
        ev(EventKind::PollStart, 10, TASK, W1),
    ];
    if let Some(kind) = waits_on {
        v.push(resource_wait(15, TASK, W1, kind));
    }
    v.push(ev(EventKind::PollEnd, 20, TASK, W1));
    v
}

/// Worker 0 parks, the driver wakes the task from there, worker 0 unparks,
/// and worker 1 polls the task.
fn driver_wake_then_poll_elsewhere() -> Vec<Event> {
    vec![
        ev(EventKind::Park, 30, 0, W0),
        wake(40, TASK, 0, W0),
        ev(EventKind::Unpark, 41, 0, W0),
        ev(EventKind::PollStart, 50, TASK, W1),
        ev(EventKind::PollEnd, 60, TASK, W1),
    ]
}

/// Writes `events` as a trace and reads it back; the events must come back exactly.
fn round_trip(events: &[Event], reg: &Registry) -> taskline_trace::Recording {
    let mut bytes = Vec::new();
    encode_trace(events, reg, &mut bytes).expect("encode");
    let rec = read_trace(&bytes).expect("read");
    assert_eq!(rec.format_version, 4);
    assert_eq!(rec.by_thread(), taskline_trace::events_by_thread(events));
    assert_eq!(rec.flows, rec.flow_arrows.len() as u64);
    rec
}

fn arrow(from: FlowStart, start: (u16, u64), end: (u16, u64)) -> FlowArrow {
    FlowArrow {
        from,
        task: TASK,
        start_thread: start.0,
        start_ns: start.1,
        end: Some(end),
    }
}

#[test]
fn an_io_wake_draws_an_arrow_from_the_waking_worker_to_the_next_poll() {
    let mut events = first_poll(None);
    events.extend(driver_wake_then_poll_elsewhere());
    let rec = round_trip(&events, &Registry::new());
    assert_eq!(
        rec.flow_arrows,
        vec![arrow(FlowStart::Io, (W0, 40), (W1, 50))]
    );
}

#[test]
fn a_wake_after_a_sleep_is_the_timers() {
    let reg = registry();
    let mut events = first_poll(Some(0));
    events.extend(driver_wake_then_poll_elsewhere());
    let rec = round_trip(&events, &reg);
    assert_eq!(
        rec.flow_arrows,
        vec![arrow(FlowStart::Timer, (W0, 40), (W1, 50))]
    );
    // A wait on another resource, or a later poll without the Sleep, is I/O again.
    let mut events = first_poll(Some(1));
    events.extend(driver_wake_then_poll_elsewhere());
    assert_eq!(round_trip(&events, &reg).flow_arrows[0].from, FlowStart::Io);
    let mut events = first_poll(Some(0));
    events.extend([
        ev(EventKind::Park, 21, 0, W0),
        wake(22, TASK, 0, W0),
        ev(EventKind::Unpark, 23, 0, W0),
        ev(EventKind::PollStart, 26, TASK, W1),
        ev(EventKind::PollEnd, 27, TASK, W1),
    ]);
    events.extend(driver_wake_then_poll_elsewhere());
    let rec = round_trip(&events, &reg);
    let from: Vec<FlowStart> = rec.flow_arrows.iter().map(|a| a.from).collect();
    assert_eq!(from, vec![FlowStart::Timer, FlowStart::Io]);
}

#[test]
fn the_woken_tasks_poll_right_after_on_the_same_worker_needs_no_arrow() {
    let mut events = first_poll(None);
    events.extend([
        ev(EventKind::Park, 30, 0, W0),
        wake(40, TASK, 0, W0),
        ev(EventKind::Unpark, 41, 0, W0),
        ev(EventKind::PollStart, 50, TASK, W0),
        ev(EventKind::PollEnd, 60, TASK, W0),
    ]);
    let rec = round_trip(&events, &Registry::new());
    assert_eq!(rec.flow_arrows, vec![]);
}

#[test]
fn wakes_the_rule_does_not_call_the_drivers_get_no_driver_arrow() {
    // From a thread never seen in the runtime: foreign, no arrow.
    let mut events = first_poll(None);
    events.extend([
        wake(40, TASK, 0, PLAIN),
        ev(EventKind::PollStart, 50, TASK, W1),
        ev(EventKind::PollEnd, 60, TASK, W1),
    ]);
    assert_eq!(round_trip(&events, &Registry::new()).flow_arrows, vec![]);
    // Tokio's deferred yield: woken outside any poll on the thread that
    // polled it last, before it parks: a yield, no arrow.
    let mut events = first_poll(None);
    events.extend([
        wake(21, TASK, 0, W1),
        ev(EventKind::PollStart, 50, TASK, W0),
        ev(EventKind::PollEnd, 60, TASK, W0),
    ]);
    assert_eq!(round_trip(&events, &Registry::new()).flow_arrows, vec![]);
    // A self-wake inside its own poll: no arrow either.
    let mut events = vec![
        ev(EventKind::Spawn, 1, TASK, W1),
        ev(EventKind::PollStart, 10, TASK, W1),
    ];
    let mut own = wake(15, TASK, 0, W1);
    own.flags |= flags::SELF_WAKE;
    events.extend([
        own,
        ev(EventKind::PollEnd, 20, TASK, W1),
        ev(EventKind::PollStart, 50, TASK, W0),
        ev(EventKind::PollEnd, 60, TASK, W0),
    ]);
    assert_eq!(round_trip(&events, &Registry::new()).flow_arrows, vec![]);
}

#[test]
fn a_cross_task_wake_still_starts_at_the_waking_poll() {
    let mut events = first_poll(None);
    events.extend([
        ev(EventKind::PollStart, 30, 5, W0),
        wake(35, TASK, 5, W0),
        ev(EventKind::PollEnd, 36, 5, W0),
        ev(EventKind::PollStart, 50, TASK, W1),
        ev(EventKind::PollEnd, 60, TASK, W1),
    ]);
    let rec = round_trip(&events, &Registry::new());
    assert_eq!(
        rec.flow_arrows,
        vec![arrow(FlowStart::Task, (W0, 35), (W1, 50))]
    );
}

#[test]
fn one_arrow_per_idle_period_and_ids_are_reused_once_ended() {
    // Three rounds of driver wake -> poll elsewhere: three arrows, one id.
    let mut events = first_poll(None);
    for round in 0..3u64 {
        let t = 100 * round;
        events.extend([
            ev(EventKind::Park, 30 + t, 0, W0),
            wake(40 + t, TASK, 0, W0),
            // A second wake of the already runnable task draws nothing.
            wake(42 + t, TASK, 0, W0),
            ev(EventKind::Unpark, 44 + t, 0, W0),
            ev(EventKind::PollStart, 50 + t, TASK, W1),
            ev(EventKind::PollEnd, 60 + t, TASK, W1),
        ]);
    }
    let rec = round_trip(&events, &Registry::new());
    let expected: Vec<FlowArrow> = (0..3u64)
        .map(|r| arrow(FlowStart::Io, (W0, 40 + 100 * r), (W1, 50 + 100 * r)))
        .collect();
    assert_eq!(rec.flow_arrows, expected);
}

#[test]
fn an_arrow_whose_poll_is_not_in_the_trace_stays_open() {
    let mut events = first_poll(None);
    events.extend([ev(EventKind::Park, 30, 0, W0), wake(40, TASK, 0, W0)]);
    let rec = round_trip(&events, &Registry::new());
    assert_eq!(
        rec.flow_arrows,
        vec![FlowArrow {
            end: None,
            ..arrow(FlowStart::Io, (W0, 40), (0, 0))
        }]
    );
}

#[test]
fn the_streaming_writer_draws_the_same_arrows_across_batches() {
    let reg = registry();
    let mut events = first_poll(Some(0));
    events.extend(driver_wake_then_poll_elsewhere());
    let mut sink = PerfettoWriter::with_options(
        Vec::new(),
        TraceOptions {
            sample_rss: false,
            writer_thread: false,
            ..TraceOptions::default()
        },
    );
    let handle = sink.handle();
    // One event per batch: the wake's lookahead sees nothing after it.
    for e in &events {
        sink.on_events(std::slice::from_ref(e), &reg);
    }
    let bytes = handle.finish_with_registry(&reg).expect("finish");
    let rec = read_trace(&bytes).expect("read");
    assert_eq!(
        rec.flow_arrows,
        vec![arrow(FlowStart::Timer, (W0, 40), (W1, 50))]
    );
}
