# dockerboot-mount.sh — finding and mounting partitions, and paths below the
# mounted top level (normalized, overlapping, without symlinks).
# A part of dockerboot-core.sh (DESIGN §3), sourced by it from its own
# directory; defines functions only.  POSIX sh, busybox ash compatible,
# `set -u` clean; every name starts with _db like the core's.
# shellcheck shell=sh disable=SC2154 # the core and its other parts set the _db_ variables

# _db_device SPEC: _db_p = the block device, polling up to the timeout.
_db_device() {
    _db_t=${DOCKERBOOT_DEVICE_TIMEOUT:-30}
    while :; do
        case $1 in
            LABEL=*) _db_p=/dev/disk/by-label/${1#LABEL=}; _db_b="-L ${1#LABEL=}" ;;
            UUID=*) _db_p=/dev/disk/by-uuid/${1#UUID=}; _db_b="-U ${1#UUID=}" ;;
            PARTUUID=*) _db_p=/dev/disk/by-partuuid/${1#PARTUUID=}; _db_b= ;;
            *) _db_p=$1; _db_b= ;;
        esac
        [ -b "$_db_p" ] && return 0
        if [ -n "$_db_b" ] && command -v blkid >/dev/null 2>&1; then
            # shellcheck disable=SC2086 # "-L label" is two words
            _db_p=$(blkid $_db_b 2>/dev/null) && [ -b "$_db_p" ] && return 0
        fi
        [ "$_db_t" -gt 0 ] || return 1
        _db_t=$((_db_t - 1))
        sleep 1
    done
}

# _db_mount SPEC FSTYPE OPTS DIR WHAT: find and mount a partition.
_db_mount() {
    # shellcheck disable=SC2015 # the assignment cannot fail
    _db_device "$1" && _db_dev=$_db_p || { _db_fail "$5 partition $1 not found after ${DOCKERBOOT_DEVICE_TIMEOUT:-30}s" \
        "check $5= on the kernel command line (blkid lists labels and UUIDs)"; return 1; }
    [ -d "$4" ] || mkdir -p "$4"
    # A btrfs on several devices mounts only once the kernel knows them all:
    # scanned only then (a scan reads every block device, 0.15 s under TCG,
    # and the generators' own btrfs support has usually done it already).
    # The scan's status is not looked at: one odd device anywhere (a stick
    # with a damaged btrfs) makes it exit 1 after it registered all the rest.
    _db_o=$(mount ${2:+-t "$2"} ${3:+-o "$3"} "$_db_dev" "$4" 2>&1) \
        || { [ "$2" = btrfs ] && { btrfs device scan >/dev/null 2>&1 || :; } \
            && _db_o=$(mount -t btrfs ${3:+-o "$3"} "$_db_dev" "$4" 2>&1); } || { _db_fail \
        "mounting $_db_dev ($1) failed: $(printf '%s' "$_db_o" | tail -n 1)" \
        "check that it is ${2:-a valid filesystem} and the ${5}flags= options"; return 1; }
}

# _db_norm PATH: _db_n = PATH without empty and "." components, no leading
# or trailing slash ('' for the top level); fails on a ".." component.
_db_norm() {
    _db_n='' _db_rest=$1
    while [ -n "$_db_rest" ]; do
        _db_c=${_db_rest%%/*}
        case $_db_rest in */*) _db_rest=${_db_rest#*/} ;; *) _db_rest= ;; esac
        case $_db_c in '' | .) ;; ..) return 1 ;; *) _db_n=${_db_n:+$_db_n/}$_db_c ;; esac
    done
}

# _db_overlap A B: A and B (normalized) are the same path, or one holds the other.
_db_overlap() {
    [ -z "$2" ] && return 0
    case $1/ in "$2"/*) return 0 ;; esac
    case $2/ in "$1"/*) return 0 ;; esac
    return 1
}

# _db_nolink REL: no component of REL (normalized) below the mounted top
# level is a symlink; else _db_x = the first one (relative) and non-zero.
_db_nolink() {
    _db_x='' _db_rest=$1
    while [ -n "$_db_rest" ]; do
        _db_x=${_db_x:+$_db_x/}${_db_rest%%/*}
        case $_db_rest in */*) _db_rest=${_db_rest#*/} ;; *) _db_rest= ;; esac
        [ -L "$_db_top/$_db_x" ] && return 1
    done
    return 0
}
