//! Container networking: isolab is a CNI runtime (it calls the CNI plugins on a container's
//! network namespace), with one bridge network per session; and the few netlink requests it
//! makes itself (removing a session's bridge, moving an interface between containers).

pub mod netlink;
