//! Placeholder: the flattened device-tree layer is being written.
