//! Layer tars: unpacking an OCI layer into a folder an overlay can use, and writing an
//! overlay upper folder back out as an OCI layer.
