//! Progress lines on stderr, each with the time since the command started.

use std::time::Instant;

pub struct Progress {
    start: Instant,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            start: Instant::now(),
        }
    }

    pub fn elapsed_secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    pub fn say(&self, text: impl AsRef<str>) {
        eprintln!("[{:6.1}s] {}", self.elapsed_secs(), text.as_ref());
    }
}
