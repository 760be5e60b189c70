//! Abuse: config values that pass JSON parsing but would hurt at run time.
