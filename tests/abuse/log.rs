//! Abuse: a log sink that stops reading.
