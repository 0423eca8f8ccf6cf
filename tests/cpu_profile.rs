//! `Taskline::builder().cpu_profile(..)`: the front door's CPU profiler
//! samples the runtime it builds, labelled with this taskline's sites.
#![cfg(all(feature = "profile", target_os = "linux"))]

mod common;

use std::time::Duration;

use taskline::profile::{ProfileError, ProfilerConfig};
use taskline::{SetupError, Taskline};

#[test]
fn builder_profiles_the_runtimes_it_builds() {
    let err = Taskline::builder()
        .cpu_profile(ProfilerConfig::default().frequency_hz(0))
        .start()
        .unwrap_err();
    assert!(
        matches!(
            err,
            SetupError::Profile(ProfileError::Config {
                field: "frequency_hz",
                ..
            })
        ),
        "{err:?}"
    );

    let taskline = Taskline::builder()
        .cpu_profile(ProfilerConfig::default().frequency_hz(499))
        .start()
        .expect("start");
    let rt = taskline
        .build_runtime(
            tokio::runtime::Builder::new_multi_thread().worker_threads(2),
            "profiled",
        )
        .expect("runtime");
    let line = line!() + 1;
    let task = rt.spawn(async { common::spin_in_known_function(Duration::from_millis(400)) });
    rt.block_on(task).expect("task");
    drop(rt);
    let profile = taskline.cpu_profiler().expect("profiler").profile();
    let total = profile.total();
    assert!(total >= 50, "the worker was sampled: {total}");
    // Sites come from Tokio's hooks (tokio_unstable); stable Tokio labels
    // only tasks spawned through the wrapper.
    if taskline::capabilities().task_events {
        let by_site = profile.samples_by_site();
        let (site, n) = by_site
            .iter()
            .filter_map(|(s, n)| Some((s.as_ref()?, *n)))
            .max_by_key(|(_, n)| *n)
            .expect("samples with a site");
        assert!(
            site.starts_with(&format!("{}:{line}:", file!())),
            "{by_site:?}"
        );
        assert!(n * 10 >= total * 8, "{n} of {total}");
    }
    taskline.shutdown().expect("shutdown");
    assert!(
        !taskline::profile::sigprof_handler_installed().unwrap(),
        "stopped at shutdown"
    );
}
