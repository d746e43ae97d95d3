//! What rootfsPropagation means step by step: the mode `/` of the new mount
//! namespace takes before anything is mounted, the mode of the mount the
//! rootfs lies on, of the rootfs bind's tree, of `/` after pivot_root, and
//! of a bind cloned on the host side (which never was in the container's
//! mount namespace). Pure: the callers apply it.
//!
//! The one rule that decides whether host and container see each other's
//! mounts: a bind is a copy of its source *as the container's namespace
//! has it when the bind is made*, and it keeps that copy's peer group (a
//! peer of the host's shared mount: both ways) or master (a slave of it:
//! host to container). So the mode of `/` must be applied before the
//! binds: rshared keeps the namespace's copies of the host's shared mounts
//! in the host's peer groups (Kubernetes' Bidirectional, which containerd
//! asks for as rshared binds plus rootfsPropagation rshared), rslave turns
//! them into slaves, rprivate cuts them off; a bind's own propagation
//! option then changes only that bind.

use nix::mount::MsFlags;

/// The propagation changes for one container, each a mount(2) propagation
/// flag (with MS_REC where recursive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steps {
    /// `/` of the new mount namespace, before the rootfs bind.
    pub root_before: MsFlags,
    /// The mount the rootfs lies on, non-recursively: never shared, since
    /// pivot_root refuses a shared parent and the rootfs bind would
    /// otherwise appear in the host's namespace. None where `root_before`
    /// (recursive, not shared) has already seen to it.
    pub parent: Option<MsFlags>,
    /// The rootfs bind's whole tree, right after it is made (non-recursive
    /// modes: a shared host mount below the rootfs directory must not stay
    /// a peer of the host's when only `/` was asked for).
    pub rootfs_tree: Option<MsFlags>,
    /// `/` after pivot_root (or the move of --no-pivot).
    pub root_after: Option<MsFlags>,
}

const SHARED: MsFlags = MsFlags::MS_SHARED;
const SLAVE: MsFlags = MsFlags::MS_SLAVE;
const PRIVATE: MsFlags = MsFlags::MS_PRIVATE;
const UNBINDABLE: MsFlags = MsFlags::MS_UNBINDABLE;
const REC: MsFlags = MsFlags::MS_REC;

/// The steps for rootfsPropagation `asked` (None: unset, which is rslave).
pub fn steps(asked: Option<MsFlags>, no_pivot: bool) -> Steps {
    let asked = asked.unwrap_or(SLAVE | REC);
    let rec = asked.contains(REC);
    let kind = asked & !REC;
    if kind == SHARED && !no_pivot {
        // As runc: `/` (recursively for rshared) shared before the binds,
        // the parent private. `/` itself is shared once it is the rootfs,
        // non-recursively: a bind's own option (rprivate, rslave) stays.
        return Steps {
            root_before: asked,
            parent: Some(PRIVATE),
            rootfs_tree: (!rec).then_some(SLAVE | REC),
            root_after: Some(SHARED),
        };
    }
    if kind == SHARED || kind == UNBINDABLE {
        // Unbindable: the rootfs could not be bound out of an unbindable
        // `/` (runc 1.1 fails there with EINVAL). Shared with --no-pivot:
        // the rootfs is moved onto `/`, and onto a shared `/` the move
        // would propagate to the host's. Both are made slaves first and
        // take their mode once the rootfs is `/`.
        return Steps {
            root_before: SLAVE | REC,
            parent: None,
            rootfs_tree: None,
            root_after: Some(asked),
        };
    }
    let parent = if kind == SLAVE { SLAVE } else { PRIVATE };
    Steps {
        root_before: asked,
        parent: (!rec).then_some(parent),
        rootfs_tree: (!rec).then_some(asked | REC),
        root_after: None,
    }
}

/// For a bind cloned on the host side (`host_mounts`: id-mapped, or of a
/// container with a new user namespace): the changes that give the
/// detached clone the propagation the init's own bind of the same source
/// would have had. The clone is a copy of the host's mount, a peer of it
/// if it is shared; the init's copy is first reduced to a slave when its
/// mount namespace belongs to a new user namespace (the kernel does that
/// for a less privileged namespace), then takes `root_before` when that is
/// recursive (a non-recursive one changes `/` only).
pub fn host_clone(steps: &Steps, new_userns: bool) -> Vec<MsFlags> {
    let mut v = Vec::new();
    if new_userns {
        v.push(SLAVE | REC);
    }
    if steps.root_before.contains(REC) {
        v.push(steps.root_before);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::propagation_flag;

    fn of(s: Option<&str>, no_pivot: bool) -> Steps {
        steps(s.map(|s| propagation_flag(s).unwrap()), no_pivot)
    }

    #[test]
    fn the_parent_is_never_shared() {
        for s in [
            None,
            Some("shared"),
            Some("rshared"),
            Some("slave"),
            Some("rslave"),
            Some("private"),
            Some("rprivate"),
            Some("unbindable"),
            Some("runbindable"),
        ] {
            for no_pivot in [false, true] {
                let st = of(s, no_pivot);
                // Made non-shared by `root_before` or by `parent`.
                let rb = st.root_before;
                let by_root = rb.contains(REC) && !rb.contains(SHARED);
                assert!(by_root || st.parent.is_some(), "{s:?}: {st:?}");
                let p = st.parent.unwrap_or(SLAVE);
                assert!(!p.contains(SHARED) && !p.contains(REC), "{s:?}: {st:?}");
                // What the rootfs tree ends with before pivot is never
                // shared (pivot_root refuses a shared new root).
                assert!(
                    !st.rootfs_tree.is_some_and(|t| t.contains(SHARED)),
                    "{s:?}: {st:?}"
                );
            }
        }
    }

    #[test]
    fn rshared_shares_before_the_binds() {
        let st = of(Some("rshared"), false);
        assert_eq!(st.root_before, SHARED | REC);
        assert_eq!(st.root_after, Some(SHARED));
        assert_eq!(st.rootfs_tree, None);
        // --no-pivot: never a shared `/` under the move.
        let st = of(Some("rshared"), true);
        assert_eq!(st.root_before, SLAVE | REC);
        assert_eq!(st.root_after, Some(SHARED | REC));
    }

    #[test]
    fn unset_is_rslave() {
        assert_eq!(of(None, false), of(Some("rslave"), false));
        assert_eq!(of(None, false).root_before, SLAVE | REC);
        assert_eq!(of(None, false).root_after, None);
    }

    #[test]
    fn host_clones_follow_the_namespace() {
        let st = of(None, false);
        assert_eq!(host_clone(&st, false), vec![SLAVE | REC]);
        assert_eq!(host_clone(&st, true), vec![SLAVE | REC, SLAVE | REC]);
        let st = of(Some("rshared"), false);
        assert_eq!(host_clone(&st, false), vec![SHARED | REC]);
        assert_eq!(host_clone(&st, true), vec![SLAVE | REC, SHARED | REC]);
        // Non-recursive modes leave the source's copy as it was.
        assert!(host_clone(&of(Some("private"), false), false).is_empty());
    }
}
