//! The one place the runtime's clock (`tokio::time::Instant`) is converted to
//! and from proto's [`Instant`](utcp_proto::Instant).

use std::time::Duration;
use tokio::time::Instant as TokioInstant;
use utcp_proto::Instant;

/// Converts between tokio time and proto time, counted from the stack's epoch.
/// Under `tokio::time::pause()` this is virtual time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: TokioInstant,
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Clock {
            epoch: TokioInstant::now(),
        }
    }

    /// Now, as proto time.
    pub fn now(&self) -> Instant {
        self.to_proto(TokioInstant::now())
    }

    /// A tokio instant as proto time.
    pub fn to_proto(&self, t: TokioInstant) -> Instant {
        Instant::from_micros(t.saturating_duration_since(self.epoch).as_micros() as u64)
    }

    /// A proto instant as tokio time.
    pub fn to_tokio(&self, t: Instant) -> TokioInstant {
        self.epoch + Duration::from_micros(t.as_micros())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
