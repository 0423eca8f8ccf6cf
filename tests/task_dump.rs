//! Task dumps through `taskline::task_dump`: a task parked in a known
//! `async fn` shows that fn in the dump, on both runtime flavours; a
//! blocked worker refuses the dump (Tokio's could wedge the worker), and
//! dumps work again once it is free.
//! Without support, the error says what is missing.

use std::time::Duration;

use taskline::{TASK_DUMPS_SUPPORTED, TaskDumpError, task_dump};

#[inline(never)]
async fn parked_in_a_known_async_fn(rx: tokio::sync::oneshot::Receiver<()>) {
    let _ = rx.await;
}

#[test]
fn a_parked_task_shows_its_async_fn_on_a_multi_thread_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let parked = rt.spawn(parked_in_a_known_async_fn(rx));
    match (
        TASK_DUMPS_SUPPORTED,
        task_dump(rt.handle(), Duration::from_secs(20)),
    ) {
        (true, Ok(text)) => {
            assert!(text.contains("parked_in_a_known_async_fn"), "{text}");
            assert!(text.contains("tokio::sync::oneshot"), "{text}");
            // Our parked task and the task that asked for the dump.
            assert!(text.starts_with("2 tasks\n"), "{text}");
        }
        (false, Err(TaskDumpError::Unsupported(why))) => {
            assert!(why.contains("task dumps are not available"), "{why}");
        }
        (_, other) => panic!("{other:?}"),
    }
    tx.send(()).unwrap();
    rt.block_on(parked).unwrap();
}

#[test]
fn a_parked_task_shows_its_async_fn_on_a_current_thread_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // The current-thread runtime runs (and so can be dumped) while block_on drives it.
    let driver = std::thread::spawn(move || {
        rt.block_on(async move {
            let parked = tokio::spawn(parked_in_a_known_async_fn(rx));
            let _ = stop_rx.await;
            parked.await.unwrap();
        })
    });
    let result = task_dump(&handle, Duration::from_secs(20));
    tx.send(()).unwrap();
    stop_tx.send(()).unwrap();
    driver.join().unwrap();
    match (TASK_DUMPS_SUPPORTED, result) {
        (true, Ok(text)) => assert!(text.contains("parked_in_a_known_async_fn"), "{text}"),
        (false, Err(TaskDumpError::Unsupported(_))) => {}
        (_, other) => panic!("{other:?}"),
    }
}

#[test]
fn a_blocked_worker_refuses_the_dump_and_it_recovers() {
    if !TASK_DUMPS_SUPPORTED {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let blocker = rt.spawn(async move {
        started_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(800)); // blocks its worker
    });
    started_rx.recv().unwrap();
    let err = task_dump(rt.handle(), Duration::from_secs(5)).unwrap_err();
    assert!(matches!(err, TaskDumpError::WorkerBlocked(_)), "{err:?}");
    assert!(err.to_string().contains("is blocked"), "{err}");
    rt.block_on(blocker).unwrap();
    // Nothing was asked of Tokio: the next dump works at once...
    let text = task_dump(rt.handle(), Duration::from_secs(10)).unwrap();
    assert!(text.contains("TASK"), "{text}");
    // ...and no worker was left waiting for a dump: shutdown completes.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(rt);
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the runtime shut down");
}

#[test]
fn a_shut_down_runtime_gives_no_dump() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    rt.shutdown_timeout(Duration::from_secs(5));
    match (
        TASK_DUMPS_SUPPORTED,
        task_dump(&handle, Duration::from_secs(5)),
    ) {
        (true, Err(TaskDumpError::RuntimeGone)) | (false, Err(TaskDumpError::Unsupported(_))) => {}
        (_, other) => panic!("{other:?}"),
    }
}
