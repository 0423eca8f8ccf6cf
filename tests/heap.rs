//! Heap profiles: with feature `heap` on Linux and jemalloc installed by
//! `heap_profiling_allocator!`, a large live allocation is in the sampled
//! profile and `heap_profile` returns a gzipped pprof; without the
//! feature, the error says how to get one.

#[cfg(all(feature = "heap", target_os = "linux"))]
taskline::heap_profiling_allocator!();

#[cfg(all(feature = "heap", target_os = "linux"))]
#[test]
fn a_live_allocation_is_in_the_heap_profile() {
    #[inline(never)]
    fn hold_a_lot() -> Vec<u8> {
        std::hint::black_box(vec![3u8; 48 << 20])
    }
    let held = hold_a_lot();
    // The sampled profile, parsed: the allocation's stack carries its size
    // (jemalloc samples every 512 KiB on average; 48 MiB is always seen).
    let stacks = {
        let ctl = jemalloc_pprof::PROF_CTL.as_ref().expect("profiling on");
        let mut ctl = ctl.try_lock().expect("not busy");
        ctl.dump_profile().expect("jemalloc dump")
    };
    let biggest = stacks
        .iter()
        .map(|(stack, _)| stack.weight)
        .fold(0.0, f64::max);
    assert!(
        biggest >= (40 << 20) as f64,
        "largest sampled stack {biggest} B"
    );

    let pprof = taskline::heap::heap_profile().expect("heap profile");
    assert_eq!(&pprof[..2], &[0x1f, 0x8b], "gzip");
    assert!(pprof.len() > 100, "{} bytes", pprof.len());
    drop(held);

    // Through the front door too (no OTLP: nothing to count, still a profile).
    let t = taskline::Taskline::builder().start().unwrap();
    assert_eq!(&t.heap_profile().unwrap()[..2], &[0x1f, 0x8b]);
    t.shutdown().unwrap();
}

#[cfg(not(all(feature = "heap", target_os = "linux")))]
#[test]
fn without_the_feature_the_error_says_how() {
    let e = taskline::heap::heap_profile().unwrap_err();
    assert!(matches!(
        e,
        taskline::heap::HeapProfileError::Unsupported(_)
    ));
    if cfg!(target_os = "linux") {
        assert!(e.to_string().contains("feature `heap`"), "{e}");
    }
}
