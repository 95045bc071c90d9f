//! One run of each sync, written against the client traits so the controllers, the demo and the benchmark share it.
