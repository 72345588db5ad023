# dockerboot-core.sh — boot-time core of dockerboot (DESIGN §2, §3).
# POSIX sh, busybox ash compatible, `set -u` clean.  Sourcing defines
# functions only; the generator adapters call dockerboot_main before the
# normal root mount, which then mounts the fresh rw subvolume.
#
# Kernel parameters (names of the original mkinitcpio-docker-hooks):
#   root=LABEL=x|UUID=u|PARTUUID=p|/dev/…  btrfs partition holding docker's data-root
#   rootflags=…,subvol=<rw>,…  rw root subvolume rebuilt at every boot (docker_rwlayer);
#                              never the top level, docker's data-root, boot_docker
#                              or the top layer, nor a path containing or inside them
#   docker_path=<dir>          data-root relative to the top level (docker)
#   docker_image=<name:tag>    image to boot (default: /etc/docker-btrfs.json)
#   toplayer=<dev spec>        partition holding the top layer (default: root)
#   toplayerflags=<opts>       mount options for it (subvolid=5 on the root device)
#   toplayerfstype=<type>      its filesystem type (btrfs on the root device)
#   toplayer_path=<dir>        top-layer directory there (boot_docker/toplayer);
#                              when missing, no top layer is copied (a note)
#   docker_image=sha256:<id>   pins an image by its full ID (no tag lookup)
#   dockerboot.state=, dockerboot.tries=, init=: boot assessment and fallback to
#                              the last good image, see dockerboot-assess.sh
#   dockerboot.previous=0      keep no <rw>.previous (by default the rw layer of
#                              the boot before stays, read-only, for one boot)
# Environment (tests, adapters): DOCKERBOOT_CMDLINE (instead of /proc/cmdline),
#   DOCKERBOOT_RUNDIR (/run/dockerboot), DOCKERBOOT_CONFIG (/etc/docker-btrfs.json),
#   DOCKERBOOT_LIBEXEC (/usr/lib/dockerboot: coreutils cp and sha256sum),
#   DOCKERBOOT_DEVICE_TIMEOUT (30 seconds), DOCKERBOOT_KVER (the running kernel).
# LIBEXEC also holds dockerboot-assess.sh (sourced by dockerboot_main) and
#   the booted system's dockerboot-mark-good script and unit.
# The functions live in parts beside the core, by subject (dockerboot-mount,
#   -chain, -resolve, -rwlayer, -accounts, -toplayer, -stale, -roots .sh: _db_parts
#   below), sourced with it from its own directory.
# Tools besides btrfs and LIBEXEC's: busybox (or coreutils) tr sed grep tail find
#   readlink mkdir mv rm mount umount.
# dockerboot_main returns 0, or non-zero after ONE line on stderr:
#   "dockerboot: <what is wrong> — <what to do>".
# Every name the core sets starts with _db: the generators' own variables
# (mkinitcpio's $root, initramfs-tools' $ROOT, …) must stay untouched.
#
# The hook deletes only what it made: every rw layer it makes carries the
# marker file /.dockerboot-rwlayer holding "dockerboot-rwlayer v2 <ID>", the
# subvolume's own btrfs ID, which the kernel resolves back to its path: a
# copy of the file (cp -a of the root, a snapshot, docker export + import,
# a plain directory) lies elsewhere than the subvolume it names and is no
# mark.  Older hooks wrote "dockerboot-rwlayer v1 <UUID>" (the subvolume's
# UUID): still accepted, checked with `btrfs subvolume show`, which lists
# every subvolume of the filesystem (slow with many images: why v2).

# _db_fail WHAT FIX: the one line; _db_err keeps it.  With _db_quiet=1 it is
# only kept (the assessment tries an image before it knows what to say).
_db_fail() {
    _db_err="dockerboot: $1 — $2"
    [ "${_db_quiet:-0}" = 1 ] || printf '%s\n' "$_db_err" >&2
    return 1
}

_db_nl='
'
_db_mark=.dockerboot-rwlayer
_db_magic='dockerboot-rwlayer v1'
_db_magic2='dockerboot-rwlayer v2'

# Helpers set a variable instead of printing: under a slow CPU every "$(…)"
# is a fork, and the hook's time is measured (benchmarks/hook_time.py).

# _db_tool NAME: _db_tp = the tool's own copy (coreutils cp/sha256sum shipped in
# LIBEXEC: busybox cp drops xattrs and file capabilities), else NAME from PATH.
_db_tool() {
    _db_tp=${DOCKERBOOT_LIBEXEC:-/usr/lib/dockerboot}/$1
    [ -x "$_db_tp" ] || _db_tp=$1
}

# _db_arg KEY DEFAULT: _db_v = the last KEY=value on the command line (like the kernel).
_db_arg() {
    _db_v=$2
    case $- in *f*) _db_noglob=1 ;; *) _db_noglob=0; set -f ;; esac
    for _db_w in $_db_cmdline; do
        case $_db_w in "$1"=*) _db_v=${_db_w#*=} ;; esac
    done
    [ "$_db_noglob" = 1 ] || set +f
}
# --- the parts: the core's functions by subject, beside it ---
# dockerboot-<part>.sh, sourced from the directory this core is sourced
# from: the initramfs's /usr/lib/dockerboot (the adapters ship every
# dockerboot-*.sh there) or the wizard's assets/hook.  This list is the one
# place naming them.
_db_parts='mount chain resolve rwlayer accounts toplayer stale roots'

# _db_find_here: _db_here = the directory of the core being sourced; non-zero
# when it cannot be told.  bash names the file; ash and dash keep it open on
# a descriptor of their own (10 or more) while they read it: when that is
# DOCKERBOOT_LIBEXEC's core (at boot) the shell's own test says so, no
# process; else (tests) the kernel names it (readlink, one process).
_db_find_here() {
    _db_here=
    if [ -n "${BASH_VERSION:-}" ]; then
        # shellcheck disable=SC3028,SC3054 # bash only (its -n above)
        _db_f=${BASH_SOURCE[0]:-}
        case $_db_f in '') return 1 ;; */*) _db_here=${_db_f%/*} ;; *) _db_here=. ;; esac
        return 0
    fi
    _db_l=${DOCKERBOOT_LIBEXEC:-/usr/lib/dockerboot}
    case $- in *f*) _db_noglob=1; set +f ;; *) _db_noglob=0 ;; esac
    for _db_f in /proc/self/fd/*; do
        # shellcheck disable=SC3013 # -ef: busybox ash, dash and bash have it
        if [ "$_db_f" -ef "$_db_l/dockerboot-core.sh" ] && [ -f "$_db_l/dockerboot-toplayer.sh" ]; then
            _db_here=$_db_l
            break
        fi
    done
    [ -n "$_db_here" ] || for _db_f in /proc/self/fd/[1-9]?*; do
        _db_l=$(readlink "/proc/$$/fd/${_db_f##*/}" 2>/dev/null) || continue
        # shellcheck disable=SC3013
        case $_db_l in */dockerboot-core.sh) [ "$_db_l" -ef "$_db_f" ] && { _db_here=${_db_l%/*}; break; } ;; esac
    done
    [ "$_db_noglob" = 0 ] || set -f
    [ -n "$_db_here" ]
}

# Sourced once, now; _db_partserr names what is missing (dockerboot_main says it).
_db_partserr=
if _db_find_here; then
    _db_ifs=$IFS; IFS=' '
    for _db_f in $_db_parts; do
        if [ -f "$_db_here/dockerboot-$_db_f.sh" ]; then
            # shellcheck source=/dev/null # each part is checked on its own
            . "$_db_here/dockerboot-$_db_f.sh"
        else
            _db_partserr="$_db_partserr $_db_here/dockerboot-$_db_f.sh"
        fi
    done
    IFS=$_db_ifs
else
    _db_partserr=" the directory of dockerboot-core.sh (sourced by a shell that names no file)"
fi

# _db_cleanup: unmount what this run mounted; after a success with "late"
# (_db_late=1) the partition's top level stays, for dockerboot_finish.
_db_cleanup() {
    [ "$_db_tl_mounted" = 1 ] && { umount "$_db_run/toplayer" 2>/dev/null; rmdir "$_db_run/toplayer" 2>/dev/null; }
    [ "$_db_root_mounted" = 1 ] && { [ "$_db_status" != 0 ] || [ "$_db_late" = 0 ]; } \
        && { umount "$_db_run/root" 2>/dev/null; rmdir "$_db_run/root" 2>/dev/null; }
    _db_tl_mounted=0 _db_root_mounted=0
    return 0
}

# dockerboot_finish: once the generator has mounted the root, unmount the
# partition's top level that dockerboot_main late left mounted (in the
# hook's own run directory: nothing else is ever mounted there).  Never fails.
dockerboot_finish() {
    _db_run=${DOCKERBOOT_RUNDIR:-/run/dockerboot}
    umount "$_db_run/root" 2>/dev/null && rmdir "$_db_run/root" 2>/dev/null
    return 0
}

# Seconds since boot, for the hook's own timing line (benchmarks read it).
# _db_uptime VAR: VAR = seconds since boot (read is a shell built-in: no fork).
_db_uptime() {
    _db_u='?'
    { read -r _db_u _db_idle </proc/uptime; } 2>/dev/null
    eval "$1=\$_db_u"
}

# dockerboot_main [late]: rebuild the rw root subvolume from the configured image.
# The one exit path: a half-made new root is deleted, everything mounted is
# unmounted, whatever failed.  "late" (the adapters that unmount later):
# after a success the partition's top level stays mounted until the caller
# runs dockerboot_finish, once the generator has mounted the root.  Its
# unmount would close the filesystem (a transaction commit) only for the
# root mount to open it again; mounted, the root mount shares it.
dockerboot_main() {
    _db_late=0
    [ "${1:-}" != late ] || _db_late=1
    _db_run=${DOCKERBOOT_RUNDIR:-/run/dockerboot}
    _db_lx=${DOCKERBOOT_LIBEXEC:-/usr/lib/dockerboot}
    _db_tl_mounted=0 _db_root_mounted=0 _db_note='' _db_new='' _db_err=''
    _db_uptime _db_t0
    # Called as a condition: a caller's set -e cannot stop it half-way, before the cleanup.
    _db_status=0
    _db_main || _db_status=$?
    # _db_new is set only while it holds a new root this run made (never on success).
    [ "$_db_status" = 0 ] || { [ -n "$_db_new" ] && [ -e "$_db_new" ] && _db_delete "$_db_new"; }
    # Leaving the emergency shell boots the rw layer of the boot before:
    # it must not pass for this boot's (dockerboot-stale.sh).  The top level
    # mounted: the parts are there (_db_main checks them first).
    [ "$_db_status" = 0 ] || [ "$_db_root_mounted" = 0 ] || _db_stale
    _db_cleanup
    [ "$_db_status" = 0 ] || return 1
    [ -z "$_db_note" ] || printf 'dockerboot: %s\n' "$_db_note" >&2
    _db_uptime _db_t1
    # shellcheck disable=SC2154 # _db_t0 and _db_t1 are set by _db_uptime (eval)
    printf 'dockerboot: %s is now a fresh snapshot of %s (uptime %s -> %s)\n' \
        "$_db_rw" "$_db_ref" "$_db_t0" "$_db_t1" >&2
    return 0
}

_db_main() {
    [ -z "$_db_partserr" ] || { _db_fail "the core's parts are missing:$_db_partserr" \
        "rebuild the initramfs with dockerboot-wizard (it ships every dockerboot-*.sh beside the core)"; return 1; }
    if [ -n "${DOCKERBOOT_CMDLINE+set}" ]; then
        _db_cmdline=$DOCKERBOOT_CMDLINE
    else
        _db_cmdline=
        { read -r _db_cmdline </proc/cmdline; } 2>/dev/null
    fi
    _db_arg root ''; _db_rootspec=$_db_v
    [ -n "$_db_rootspec" ] || { _db_fail "no root= on the kernel command line" \
        "add root=LABEL=<btrfs label> to the boot entry"; return 1; }
    # subvol= among the other rootflags options (compress=zstd,…); the last wins.
    _db_rw=docker_rwlayer
    _db_arg rootflags ''
    case $- in *f*) _db_noglob=1 ;; *) _db_noglob=0; set -f ;; esac
    _db_ifs=$IFS; IFS=,
    for _db_o in $_db_v; do
        case $_db_o in subvol=*) _db_rw=${_db_o#subvol=} ;; esac
    done
    IFS=$_db_ifs
    [ "$_db_noglob" = 1 ] || set +f
    _db_arg docker_path docker; _db_dpath=$_db_v
    _db_arg docker_image ''; _db_ref=$_db_v
    _db_arg toplayer "$_db_rootspec"; _db_tlspec=$_db_v
    _db_arg toplayerflags ''; _db_tlflags=$_db_v
    _db_arg toplayerfstype ''; _db_tlfs=$_db_v
    _db_arg toplayer_path boot_docker/toplayer; _db_tlpath=$_db_v
    # Only 0 turns it off: a typo keeps the safer default (a copy kept).
    _db_arg dockerboot.previous 1; _db_keep=1
    [ "$_db_v" != 0 ] || _db_keep=0
    # Before anything else: a reserved name is refused, nothing is touched.
    _db_check_rw "$_db_rw" || return 1
    # Boot assessment and fallback (dockerboot-assess.sh, shipped beside the
    # core).  Without it the configured image boots as before, with a warning.
    _db_assess_on=0
    # shellcheck disable=SC1091 # shipped beside the core, checked on its own
    command -v _db_assess >/dev/null 2>&1 \
        || { [ -f "$_db_lx/dockerboot-assess.sh" ] && . "$_db_lx/dockerboot-assess.sh"; }
    if command -v _db_assess >/dev/null 2>&1; then
        _db_assess_on=1
        _db_assess_args || return 1
    else
        _db_note="warning: no $_db_lx/dockerboot-assess.sh in the initramfs: no boot assessment, no fallback (rebuild the initramfs with dockerboot-wizard)"
    fi
    if [ -z "$_db_ref" ] && [ -f "${DOCKERBOOT_CONFIG:-/etc/docker-btrfs.json}" ]; then
        _db_json=$(tr -d '\n\t' <"${DOCKERBOOT_CONFIG:-/etc/docker-btrfs.json}")
        _db_ref=$(printf '%s' "$_db_json" | sed -n 's/.*"docker_image": *"\([^"]*\)".*/\1/p')
        _db_tag=$(printf '%s' "$_db_json" | sed -n 's/.*"docker_tag": *"\([^"]*\)".*/\1/p')
        [ -n "$_db_ref" ] && [ -n "$_db_tag" ] && _db_ref=$_db_ref:$_db_tag
    fi
    [ -n "$_db_ref" ] || { _db_fail "no image configured" \
        "add docker_image=<name:tag> to the kernel command line or rebuild the initramfs"; return 1; }

    # Loaded already by the generator's btrfs support, mostly: a process saved.
    [ -d /sys/fs/btrfs ] || modprobe btrfs >/dev/null 2>&1
    _db_top=$_db_run/root
    _db_mount "$_db_rootspec" btrfs subvolid=5 "$_db_top" root || return 1
    _db_root_mounted=1
    if [ "$_db_tlspec" = "$_db_rootspec" ] && [ -z "$_db_tlflags" ] && [ "${_db_tlfs:-btrfs}" = btrfs ]; then
        _db_tl=$_db_top/$_db_tlpath
    else
        [ "$_db_tlspec" = "$_db_rootspec" ] && _db_tlfs=${_db_tlfs:-btrfs} \
            && _db_tlflags=${_db_tlflags:-subvolid=5}
        _db_mount "$_db_tlspec" "$_db_tlfs" "$_db_tlflags" "$_db_run/toplayer" toplayer || return 1
        _db_tl_mounted=1
        _db_tl=$_db_run/toplayer/$_db_tlpath
    fi

    _db_data=$_db_top/$_db_dpath
    [ -d "$_db_data" ] || { _db_fail "docker data-root $_db_dpath not found on $_db_rootspec" \
        "set docker_path= to docker's data-root relative to the partition's top level"; return 1; }
    # A symlink on the way could lead the rw name anywhere (docker's store).
    _db_nolink "$_db_rw" || { _db_fail "rootflags=subvol=$_db_rw goes through the symlink $_db_x" \
        "name the rw layer's real path"; return 1; }
    if [ "$_db_assess_on" = 1 ]; then
        _db_assess || return 1
    else
        _db_resolve "$_db_data" "$_db_ref" || return 1
    fi

    # Safe swap: the old root stays until the new one is complete.  Each of
    # the three is deleted only if this hook made it (_db_ours).
    _db_rwp=$_db_top/$_db_rw
    _db_newp=$_db_rwp.new _db_old=$_db_rwp.old
    # _db_rwm: the rw layer carries the mark (not only legacy): it may become .previous.
    _db_rwm=0
    if [ -e "$_db_rwp" ]; then
        _db_ours "$_db_rwp" || return 1
        # shellcheck disable=SC2154 # _db_ours (dockerboot-rwlayer.sh) sets it
        _db_rwm=$_db_own
    fi
    _db_remove "$_db_newp" && _db_remove "$_db_old" || return 1
    [ -d "${_db_newp%/*}" ] || mkdir -p "${_db_newp%/*}"
    # shellcheck disable=SC2154 # _db_resolve or _db_assess sets it
    _db_o=$(btrfs subvolume snapshot "$_db_sub" "$_db_newp" 2>&1) || { _db_fail \
        "snapshot of $_db_sub failed: $(printf '%s' "$_db_o" | tail -n 1)" \
        "check free space on $_db_rootspec (btrfs filesystem usage)"; return 1; }
    _db_new=$_db_newp
    if [ -d "$_db_tl" ]; then
        _db_copy_top || return 1
        _db_merge_accounts "$_db_tl" "$_db_sub" "$_db_new" || { _db_fail \
            "merging the image's users and groups into $_db_f of the new root failed" \
            "check free space on $_db_rootspec (btrfs filesystem usage), or remove $_db_f from the top layer"
            return 1; }
    else
        _db_note="${_db_note:+$_db_note; }no top layer at $_db_tlpath, the image boots unchanged"
    fi
    # After the top layer, which cannot forge what the hook says about this boot.
    if [ "$_db_assess_on" = 1 ]; then _db_assess_root || return 1; fi
    # The mark comes last, after the top layer (which cannot forge it): an
    # unmarked leftover .new of a crash is a snapshot of a docker layer,
    # which _db_legacy accepts.  The mark names the new subvolume's ID (the
    # kernel's answer for the snapshot's own root: 256 or more; one stat,
    # else btrfs-progs).  (Each step of the && chain may fail: all go to the ||.)
    # shellcheck disable=SC2015,SC2154 # _db_subvol_id (dockerboot-rwlayer.sh) sets _db_svid
    { { _db_subvol_id "$_db_new" && _db_x=$_db_svid; } \
        || _db_x=$(btrfs inspect-internal rootid "$_db_new" 2>/dev/null); } \
        && case $_db_x in '' | 0* | *[!0-9]*) false ;; esac && [ "$_db_x" -ge 256 ] \
        && { [ ! -e "$_db_new/$_db_mark" ] && [ ! -L "$_db_new/$_db_mark" ] \
        || rm -f "$_db_new/$_db_mark"; } && { printf '%s\n' "$_db_magic2 $_db_x" >"$_db_new/$_db_mark"; } 2>/dev/null || { _db_fail \
        "cannot mark the new root $_db_rw.new as dockerboot's" \
        "check free space on $_db_rootspec (btrfs filesystem usage)"; return 1; }
    # The rw layer (checked by _db_ours above) goes aside to .previous
    # directly, read-only already (_db_previous: the one of the boot before
    # goes first, only if ours), else to .old, deleted after the swap.  If
    # the new root cannot take its name, the old one gets it back (and its
    # ro flag off): never are both lost.
    _db_aside='' _db_unro=0
    [ ! -e "$_db_rwp" ] || _db_aside=$_db_old
    _db_previous
    if [ -n "$_db_aside" ]; then
        mv "$_db_rwp" "$_db_aside" 2>/dev/null || { _db_writable "$_db_rwp"; _db_fail \
            "cannot move the old rw layer $_db_rw aside" "delete $_db_rw by hand from the emergency shell"
            return 1; }
    fi
    mv "$_db_new" "$_db_rwp" 2>/dev/null || { [ -z "$_db_aside" ] \
        || { mv "$_db_aside" "$_db_rwp" 2>/dev/null && _db_writable "$_db_rwp"; }
        _db_fail "cannot rename $_db_rw.new to $_db_rw" "rename it by hand from the emergency shell"
        return 1; }
    _db_new=
    if [ -e "$_db_old" ] && ! _db_delete "$_db_old"; then
        _db_note="${_db_note:+$_db_note; }warning: could not delete $_db_rw.old (deleted next boot)"
    fi
    # dockerboot's own copies of the fallback images (dockerboot-roots.sh).
    if [ "$_db_assess_on" = 1 ]; then _db_roots_keep; _db_assess_state; fi
    return 0
}
