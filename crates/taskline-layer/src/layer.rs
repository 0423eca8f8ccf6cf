//! The `tracing_subscriber::Layer` that records Tokio's task spans, wakes and
//! resources into a [`Recorder`](crate::recorder::Recorder).
