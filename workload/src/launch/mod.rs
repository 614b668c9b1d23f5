//! Launchers: run the workload under a configuration (local threads, Spark, Dataproc, a command).
