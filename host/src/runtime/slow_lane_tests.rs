//! Tests of the slow lane ([`super`]).

use super::*;

#[test]
fn a_slow_call_marks_its_entry_for_a_while() {
    let heavy = Arc::new(Marks::heavy());
    let ticket = SlowLane::with_threads(1).ticket(&heavy);
    let ticket = LaneTicket { caller: Some(Caller::of("someone")), ..ticket };
    assert_eq!(ticket.computed_since_resume(), Duration::ZERO, "unknown from the call's start");
    // Computing counts; waiting (the kernel setting the thread aside, here a sleep) does not.
    // Spin until this thread's own clock has moved (not the wall clock:
    // on a loaded machine 1 ms of wall time may hold less computing).
    let from = thread_cpu_nanos();
    ticket.resumed_cpu.store(from, Ordering::Relaxed);
    let give_up = Instant::now() + Duration::from_secs(10);
    while thread_cpu_nanos() - from < 2 * SLOW_AFTER.as_nanos() as u64 && Instant::now() < give_up {
        std::hint::black_box(Instant::now());
    }
    assert!(ticket.computed_since_resume() >= SLOW_AFTER, "computing counts");
    ticket.resumed_cpu.store(thread_cpu_nanos(), Ordering::Relaxed);
    std::thread::sleep(SLOW_AFTER * 4);
    assert!(ticket.computed_since_resume() < SLOW_AFTER, "waiting is not computing");
    ticket.resumed_cpu.store(thread_cpu_nanos(), Ordering::Relaxed);
    ticket.resumed();
    assert_eq!(ticket.computed_since_resume(), Duration::ZERO, "an HTTP answer starts an unknown slice");
    drop(ticket.at_tick(false));
    assert_eq!(heavy.for_caller(ticket.caller.unwrap()), None);
    drop(ticket.at_tick(true));
    assert_eq!(heavy.for_caller(ticket.caller.unwrap()), Some(Marked::Caller));
    for (_, until) in heavy.callers.lock().unwrap().iter_mut() {
        *until = now_nanos() + 1;
    }
    std::thread::sleep(Duration::from_millis(1));
    assert_eq!(heavy.for_caller(ticket.caller.unwrap()), None, "the mark ends on its own");
}

#[test]
fn one_callers_slow_calls_mark_that_caller_and_several_callers_mark_everyone() {
    let heavy = Marks::heavy();
    let (attacker, neighbour) = (Caller::of("attacker"), Caller::of("neighbour"));
    assert_ne!(attacker, neighbour);
    for _ in 0..100 {
        heavy.mark(attacker);
    }
    assert_eq!(heavy.for_caller(attacker), Some(Marked::Caller));
    assert_eq!(heavy.for_caller(neighbour), None, "one caller's input slows only that caller");
    heavy.mark(Caller::of("second"));
    assert_eq!(heavy.for_caller(neighbour), None, "two callers are not yet several");
    heavy.mark(Caller::of("third"));
    assert_eq!(heavy.for_caller(neighbour), Some(Marked::Entry), "three callers' slow calls: the component is slow for everyone");
    // A caller rotating through identities is remembered up to a bound.
    for n in 0..1000 {
        heavy.mark(Caller::of(n));
    }
    assert!(heavy.callers.lock().unwrap().len() <= REMEMBERED);
    // A call that went well ends its caller's mark and the entry's.
    heavy.clear(attacker);
    assert_eq!(heavy.for_caller(neighbour), None);
    let faulted = Marks::faulted();
    faulted.mark(attacker);
    faulted.clear(attacker);
    assert_eq!(faulted.for_caller(attacker), None);
}

#[tokio::test]
async fn lane_work_runs_at_a_lower_priority_and_ends_at_its_deadline() {
    let lane = SlowLane::with_threads(1);
    let nice = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
    let (lane_nice, name) =
        lane.run(Instant::now() + Duration::from_secs(5), async move { (nice(), std::thread::current().name().map(str::to_owned)) }).await.unwrap();
    assert_eq!((lane_nice, name.as_deref()), ((nice() + NICER_BY).min(19), Some("portcullis-slow")));
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
    let never = lane.run(Instant::now() + Duration::from_millis(20), async move {
        let _tell_when_dropped = dropped_tx;
        std::future::pending::<()>().await
    });
    assert_eq!(never.await, Err(Late::Running));
    // The abandoned work was dropped (its sender with it).
    tokio::time::timeout(Duration::from_secs(5), dropped_rx).await.unwrap().unwrap_err();
}

#[tokio::test]
async fn the_lanes_queue_wait_and_occupancy_are_measured() {
    let lane = SlowLane::with_threads(1);
    let metrics = lane.metrics().clone();
    assert_eq!(metrics.threads.get(), 1);
    // Hold the lane's one thread (a blocking wait, as a runaway would), then queue a call behind it.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let holder = tokio::spawn({
        let lane = lane.clone();
        async move {
            lane.run(Instant::now() + Duration::from_secs(60), async move {
                started_tx.send(()).unwrap();
                let _ = held.recv();
            })
            .await
        }
    });
    started_rx.await.unwrap();
    assert_eq!((metrics.running.get(), metrics.queued.get()), (1, 0));
    let queued = tokio::spawn({
        let lane = lane.clone();
        async move { lane.run(Instant::now() + Duration::from_secs(60), async {}).await }
    });
    while metrics.queued.get() != 1 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // A call that cannot start by its deadline is counted.
    assert_eq!(lane.run(Instant::now() + Duration::from_millis(10), async {}).await, Err(Late::NotStarted));
    assert_eq!(metrics.not_started.get(), 1);
    drop(release);
    holder.await.unwrap().unwrap();
    queued.await.unwrap().unwrap();
    // The abandoned call is dropped when the lane's thread gets to it.
    let give_up = Instant::now() + Duration::from_secs(30);
    while (metrics.running.get(), metrics.queued.get()) != (0, 0) && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!((metrics.running.get(), metrics.queued.get()), (0, 0), "every unit given back, the abandoned call's too");
    let registry = crate::admin::metrics::Metrics::new();
    registry.slow_lane(&metrics);
    let text = registry.encode();
    assert!(text.contains("portcullis_slow_lane_wait_seconds_count 2\n"), "two calls started: {text}");
    assert!(text.contains("portcullis_slow_lane_not_started_total 1\n"), "{text}");
}
