//! Installing taskline's subscriber where a global default subscriber
//! already exists is a clear error, never a panic. (Its own test binary: it
//! sets the process's global default.)

use taskline_core::Recorder;
use taskline_core::{SubscriberError, TasklineSubscriber};

#[test]
fn installing_over_an_existing_global_default_is_an_error_not_a_panic() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry())
        .expect("the first global default");
    let rec = Recorder::with_defaults();
    let err = TasklineSubscriber::new(&rec, tracing_subscriber::registry())
        .expect("registry-backed")
        .try_init()
        .expect_err("a global default exists");
    assert!(matches!(err, SubscriberError::AlreadySet(_)));
    assert!(err.to_string().contains("already installed"), "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept"
    );
    // `init` reports the same problem on stderr and carries on.
    TasklineSubscriber::new(&rec, tracing_subscriber::registry())
        .expect("registry-backed")
        .init();
    rec.shutdown();
}
