//! A minimal rtnetlink client.
