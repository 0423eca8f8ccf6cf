//! `taskline.profiles.collected`: a counter of the profiles (CPU, heap) the
//! process handed out, so a dashboard shows when someone profiled it (a CPU
//! profile costs the process while it runs; a heap profile is a pause).
//!
//! The profilers live elsewhere (the CPU profiler, the facade's heap
//! profile); they call [`ProfilesCollected::add`] once per profile
//! delivered. The counter is an ordinary synchronous OTel counter: one
//! add per profile, nothing on any hot path.

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Meter};

/// Attribute of `taskline.profiles.collected`: which kind of profile
/// ([`ProfileType::as_str`]).
pub const PROFILE_TYPE: &str = "profile.type";

/// Which kind of profile was collected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProfileType {
    /// A sampled CPU profile (`profile.type = "cpu"`).
    Cpu,
    /// A heap (allocation) profile (`profile.type = "heap"`).
    Heap,
}

impl ProfileType {
    /// The attribute value: `cpu` or `heap`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileType::Cpu => "cpu",
            ProfileType::Heap => "heap",
        }
    }
}

/// Handle on the `taskline.profiles.collected` counter (unit `{profile}`,
/// attribute `profile.type`; Prometheus name
/// `taskline_profiles_collected_total`). Cheap to clone; every clone feeds
/// the same counter.
///
/// ```
/// use taskline_otel::{ProfileType, ProfilesCollected};
/// let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build();
/// let meter = opentelemetry::metrics::MeterProvider::meter(&provider, "taskline");
/// let profiles = ProfilesCollected::new(&meter);
/// profiles.add(ProfileType::Cpu); // after a CPU profile was delivered
/// ```
#[derive(Clone, Debug)]
pub struct ProfilesCollected {
    counter: Counter<u64>,
    /// `[profile.type = cpu]`, `[profile.type = heap]`.
    attrs: [[KeyValue; 1]; 2],
}

impl ProfilesCollected {
    /// Creates the counter on `meter`. Creating it again on the same meter
    /// gives a handle on the same counter (the SDK deduplicates by name).
    pub fn new(meter: &Meter) -> ProfilesCollected {
        let counter = meter
            .u64_counter("taskline.profiles.collected")
            .with_unit("{profile}")
            .with_description("Profiles collected from the process, by type (cpu, heap).")
            .build();
        ProfilesCollected {
            counter,
            attrs: [ProfileType::Cpu, ProfileType::Heap]
                .map(|t| [KeyValue::new(PROFILE_TYPE, t.as_str())]),
        }
    }

    /// [`new`](Self::new) on the global meter provider's meter `taskline`.
    pub fn global() -> ProfilesCollected {
        Self::new(&opentelemetry::global::meter(crate::METER_NAME))
    }

    /// Counts one collected profile of type `profile_type`.
    pub fn add(&self, profile_type: ProfileType) {
        let attrs = match profile_type {
            ProfileType::Cpu => &self.attrs[0],
            ProfileType::Heap => &self.attrs[1],
        };
        self.counter.add(1, attrs);
    }
}
