//! Abuse: file-descriptor exhaustion and the fd budget.
