# dockerboot-core.sh — boot-time core of dockerboot (DESIGN §2, §3).
# POSIX sh, busybox ash compatible, `set -u` clean.  Sourcing defines
# functions only; the generator adapters call dockerboot_main before the
# normal root mount, which then mounts the fresh rw subvolume.
#
# Kernel parameters (names of the original mkinitcpio-docker-hooks):
#   root=LABEL=x|UUID=u|PARTUUID=p|/dev/…  btrfs partition holding docker's data-root
#   rootflags=…,subvol=<rw>,…  rw root subvolume rebuilt at every boot (docker_rwlayer)
#   docker_path=<dir>          data-root relative to the top level (docker)
#   docker_image=<name:tag>    image to boot (default: /etc/docker-btrfs.json)
#   toplayer=<dev spec>        partition holding the top layer (default: root)
#   toplayerflags=<opts>       mount options for it (subvolid=5 on the root device)
#   toplayerfstype=<type>      its filesystem type (btrfs on the root device)
#   toplayer_path=<dir>        top-layer directory there (boot_docker/toplayer);
#                              when missing, no top layer is copied (a note)
# Environment (tests, adapters): DOCKERBOOT_CMDLINE (instead of /proc/cmdline),
#   DOCKERBOOT_RUNDIR (/run/dockerboot), DOCKERBOOT_CONFIG (/etc/docker-btrfs.json),
#   DOCKERBOOT_LIBEXEC (/usr/lib/dockerboot: coreutils cp and sha256sum),
#   DOCKERBOOT_DEVICE_TIMEOUT (30 seconds).
# dockerboot_main returns 0, or non-zero after ONE line on stderr:
#   "dockerboot: <what is wrong> — <what to do>".
# Every name the core sets starts with _db: the generators' own variables
# (mkinitcpio's $root, initramfs-tools' $ROOT, …) must stay untouched.

_db_fail() { printf 'dockerboot: %s — %s\n' "$1" "$2" >&2; return 1; }

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

# chain_id DIFFID…: print the image-spec ChainID of the layers given bottom first.
chain_id() { _db_chain_id "$@" && printf '%s\n' "$_db_c"; }

# _db_chain_id DIFFID…: _db_c = the ChainID.  One sha256sum process per layer
# and nothing else, so the hook's time barely grows with the layer count.
_db_chain_id() {
    _db_tool sha256sum
    _db_c= _db_sha=$_db_tp
    _db_tmp=${DOCKERBOOT_RUNDIR:-/run/dockerboot}/.chain-input
    mkdir -p "${_db_tmp%/*}"
    for _db_d; do
        if [ -z "$_db_c" ]; then
            _db_c=$_db_d
        else
            printf '%s %s' "$_db_c" "$_db_d" >"$_db_tmp"
            _db_h=$("$_db_sha" "$_db_tmp")
            _db_c=sha256:${_db_h%% *}
        fi
    done
    rm -f "$_db_tmp"
}

# dockerboot_normalize REF: print docker's familiar form (what repositories.json keys use).
dockerboot_normalize() { _db_normalize "$1"; printf '%s\n' "$_db_r"; }

# _db_normalize REF: _db_r = the familiar form.
_db_normalize() {
    _db_r=${1#docker.io/}
    _db_r=${_db_r#library/}
    case $_db_r in
        *@*) ;;
        # Only a colon after the last slash is a tag; host:port is not.
        *) case ${_db_r##*/} in *:*) ;; *) _db_r=$_db_r:latest ;; esac ;;
    esac
}

# dockerboot_resolve DATA_ROOT REF: print the image's top-layer subvolume.
dockerboot_resolve() { _db_resolve "$@" && printf '%s\n' "$_db_sub"; }

# _db_resolve DATA_ROOT REF: _db_sub = the image's top-layer subvolume.
# Reads only this image's metadata: repositories.json -> image config ->
# diff_ids -> ChainID -> layerdb cache-id -> btrfs/subvolumes/<cache-id>.
_db_resolve() {
    _db_img=$1/image/btrfs
    _db_normalize "$2"
    _db_ref=$_db_r
    [ -f "$_db_img/repositories.json" ] || _db_fail "$1 has no $_db_img/repositories.json" \
        "check docker_path= and that docker uses the btrfs storage driver" || return 1
    # Split the compact JSON into "key":"value" lines and match the ref
    # literally (a case pattern from a quoted variable): no regex escaping.
    _db_id=
    for _db_l in $(tr -d ' \n\t' <"$_db_img/repositories.json" | tr ',{}' '   '); do
        case $_db_l in "\"$_db_ref\":\"sha256:"*) _db_id=${_db_l#*\"sha256:}; _db_id=${_db_id%\"} ;; esac
    done
    case $_db_id in
        '' | *[!0-9a-f]*) _db_fail "image $_db_ref is not in $_db_img/repositories.json" \
            "docker pull/build it, or fix docker_image= (docker images lists what is there)"; return 1 ;;
    esac
    _db_cfg=$_db_img/imagedb/content/sha256/$_db_id
    [ -f "$_db_cfg" ] || { _db_fail "config of image $_db_ref ($_db_cfg) is missing" \
        "the docker store is damaged: pull or build $_db_ref again"; return 1; }
    _db_diffs=$(tr -d ' \n\t' <"$_db_cfg" | grep -o '"diff_ids":\[[^]]*\]' | grep -o 'sha256:[0-9a-f]*')
    [ -n "$_db_diffs" ] || { _db_fail "image $_db_ref has no rootfs.diff_ids in $_db_cfg" \
        "the docker store is damaged: pull or build $_db_ref again"; return 1; }
    # shellcheck disable=SC2086 # one diff ID per word
    _db_chain_id $_db_diffs
    _db_cidf=$_db_img/layerdb/sha256/${_db_c#sha256:}/cache-id
    _db_cid=
    { read -r _db_cid <"$_db_cidf"; } 2>/dev/null || [ -n "$_db_cid" ]  # no final newline
    case $_db_cid in
        '' | *[!0-9a-f]*) _db_fail "layer metadata $_db_cidf of image $_db_ref is missing" \
            "the docker store is damaged: pull or build $_db_ref again"; return 1 ;;
    esac
    [ -d "$1/btrfs/subvolumes/$_db_cid" ] || { _db_fail "subvolume $1/btrfs/subvolumes/$_db_cid of image $_db_ref is missing" \
        "the docker store is damaged: pull or build $_db_ref again"; return 1; }
    _db_sub=$1/btrfs/subvolumes/$_db_cid
}

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
    _db_device "$1" && _db_dev=$_db_p || { _db_fail "$5 partition $1 not found after ${DOCKERBOOT_DEVICE_TIMEOUT:-30}s" \
        "check $5= on the kernel command line (blkid lists labels and UUIDs)"; return 1; }
    mkdir -p "$4"
    _db_o=$(mount ${2:+-t "$2"} ${3:+-o "$3"} "$_db_dev" "$4" 2>&1) || { _db_fail \
        "mounting $_db_dev ($1) failed: $(printf '%s' "$_db_o" | tail -n 1)" \
        "check that it is ${2:-a valid filesystem} and the ${5}flags= options"; return 1; }
}

# _db_delete PATH: delete a subvolume and the subvolumes nested in it
# (deepest first), or a plain directory.
_db_delete() {
    if btrfs subvolume show "$1" >/dev/null 2>&1; then
        _db_rel=${1#"$_db_top"/}
        for _db_s in $(btrfs subvolume list "$_db_top" 2>/dev/null | sed -n 's/.* path //p' \
                | sed 's|^<FS_TREE>/||' | sort -r); do
            case $_db_s in "$_db_rel"/*) btrfs subvolume delete "$_db_top/$_db_s" >/dev/null 2>&1 || return 1 ;; esac
        done
        btrfs subvolume delete "$1" >/dev/null 2>&1
    else
        rm -rf "$1"
    fi
}

# _db_merge_accounts TOPLAYER IMAGE NEW: give the image's users and groups back.
# Once the wizard made a user, the top layer holds full copies of these files;
# copied over a newer image they would hide the system users its packages
# added.  For each file in both TOPLAYER and IMAGE, NEW's copy becomes the top
# layer's lines in order, then the image's non-empty lines whose name (all
# before the first ':') the top layer lacks.  One grep process reads every
# file ("path:line" per line, also a last line without a newline): a shell
# `read` costs two system calls per byte, slow under emulation.  Written in
# place (only when something is added), so mode, owner and xattrs stay the
# top layer's.  On failure _db_f names the file(s) and NEW must be discarded
# (it may hold a partly written file).
_db_merge_accounts() {
    _db_nl='
'
    [ -L "$3/etc" ] && return 0     # writing there could leave the new root
    _db_mt=$1 _db_mi=$2 _db_mn=$3 _db_files= _db_fl=
    set --
    for _db_f in etc/passwd etc/group etc/shadow etc/gshadow; do
        [ -f "$_db_mt/$_db_f" ] && [ ! -L "$_db_mt/$_db_f" ] && [ -f "$_db_mi/$_db_f" ] \
            && [ ! -L "$_db_mi/$_db_f" ] && [ -f "$_db_mn/$_db_f" ] && [ ! -L "$_db_mn/$_db_f" ] \
            || continue
        _db_files=$_db_files$_db_nl$_db_f _db_fl="$_db_fl $_db_f"   # for the loop, for errors
        set -- "$@" "$_db_mt/$_db_f" "$_db_mi/$_db_f"
    done
    [ -n "$_db_files" ] || return 0
    _db_f=${_db_fl# }
    # grep exits 1 when every file is empty (no line at all), 2 on an error.
    _db_all=$(grep -H '' "$@" 2>/dev/null) || [ $? = 1 ] || return 1
    case $- in *f*) _db_noglob=1 ;; *) _db_noglob=0; set -f ;; esac
    _db_ifs=$IFS; IFS=$_db_nl
    for _db_f in $_db_files; do
        _db_out= _db_names=$_db_nl _db_add=
        for _db_l in $_db_all; do   # every line has its "path:" prefix: none is empty
            case $_db_l in "$_db_mt/$_db_f:"*) ;; *) continue ;; esac
            _db_l=${_db_l#"$_db_mt/$_db_f:"}
            _db_out=$_db_out$_db_l$_db_nl
            _db_names=$_db_names${_db_l%%:*}$_db_nl
        done
        for _db_l in $_db_all; do
            case $_db_l in "$_db_mi/$_db_f:"?*) ;; *) continue ;; esac
            _db_l=${_db_l#"$_db_mi/$_db_f:"}
            # A quoted pattern matches literally: whole names between newlines.
            case $_db_names in *"$_db_nl${_db_l%%:*}$_db_nl"*) continue ;; esac
            _db_add=$_db_add$_db_l$_db_nl
        done
        [ -z "$_db_add" ] && continue
        { printf '%s' "$_db_out$_db_add" >"$_db_mn/$_db_f"; } 2>/dev/null \
            || { IFS=$_db_ifs; [ "$_db_noglob" = 1 ] || set +f; return 1; }
    done
    IFS=$_db_ifs
    [ "$_db_noglob" = 1 ] || set +f
    return 0
}

_db_cleanup() {
    [ "$_db_tl_mounted" = 1 ] && { umount "$_db_run/toplayer" 2>/dev/null; rmdir "$_db_run/toplayer" 2>/dev/null; }
    [ "$_db_root_mounted" = 1 ] && { umount "$_db_run/root" 2>/dev/null; rmdir "$_db_run/root" 2>/dev/null; }
    _db_tl_mounted=0 _db_root_mounted=0
    return 0
}

# dockerboot_main: rebuild the rw root subvolume from the configured image.
# Seconds since boot, for the hook's own timing line (benchmarks read it).
# _db_uptime VAR: VAR = seconds since boot (read is a shell built-in: no fork).
_db_uptime() {
    _db_u='?'
    { read -r _db_u _db_idle </proc/uptime; } 2>/dev/null
    eval "$1=\$_db_u"
}

dockerboot_main() {
    if [ -n "${DOCKERBOOT_CMDLINE+set}" ]; then
        _db_cmdline=$DOCKERBOOT_CMDLINE
    else
        _db_cmdline=
        { read -r _db_cmdline </proc/cmdline; } 2>/dev/null
    fi
    _db_run=${DOCKERBOOT_RUNDIR:-/run/dockerboot}
    _db_tl_mounted=0 _db_root_mounted=0 _db_note=
    _db_uptime _db_t0
    _db_arg root ''; _db_rootspec=$_db_v
    [ -n "$_db_rootspec" ] || { _db_fail "no root= on the kernel command line" \
        "add root=LABEL=<btrfs label> to the boot entry"; return 1; }
    _db_rw=
    _db_arg rootflags ''
    _db_ifs=$IFS; IFS=,
    for _db_o in $_db_v; do
        case $_db_o in subvol=*) _db_rw=${_db_o#subvol=} ;; esac
    done
    IFS=$_db_ifs
    _db_rw=${_db_rw#/}
    _db_rw=${_db_rw:-docker_rwlayer}
    _db_arg docker_path docker; _db_dpath=$_db_v
    _db_arg docker_image ''; _db_ref=$_db_v
    if [ -z "$_db_ref" ] && [ -f "${DOCKERBOOT_CONFIG:-/etc/docker-btrfs.json}" ]; then
        _db_json=$(tr -d '\n\t' <"${DOCKERBOOT_CONFIG:-/etc/docker-btrfs.json}")
        _db_ref=$(printf '%s' "$_db_json" | sed -n 's/.*"docker_image": *"\([^"]*\)".*/\1/p')
        _db_tag=$(printf '%s' "$_db_json" | sed -n 's/.*"docker_tag": *"\([^"]*\)".*/\1/p')
        [ -n "$_db_ref" ] && [ -n "$_db_tag" ] && _db_ref=$_db_ref:$_db_tag
    fi
    [ -n "$_db_ref" ] || { _db_fail "no image configured" \
        "add docker_image=<name:tag> to the kernel command line or rebuild the initramfs"; return 1; }
    _db_arg toplayer "$_db_rootspec"; _db_tlspec=$_db_v
    _db_arg toplayerflags ''; _db_tlflags=$_db_v
    _db_arg toplayerfstype ''; _db_tlfs=$_db_v
    _db_arg toplayer_path boot_docker/toplayer; _db_tlpath=$_db_v

    modprobe btrfs >/dev/null 2>&1
    btrfs device scan >/dev/null 2>&1
    _db_top=$_db_run/root
    _db_mount "$_db_rootspec" btrfs subvolid=5 "$_db_top" root || return 1
    _db_root_mounted=1
    if [ "$_db_tlspec" = "$_db_rootspec" ] && [ -z "$_db_tlflags" ] && [ "${_db_tlfs:-btrfs}" = btrfs ]; then
        _db_tl=$_db_top/$_db_tlpath
    else
        [ "$_db_tlspec" = "$_db_rootspec" ] && _db_tlfs=${_db_tlfs:-btrfs} \
            && _db_tlflags=${_db_tlflags:-subvolid=5}
        _db_mount "$_db_tlspec" "$_db_tlfs" "$_db_tlflags" "$_db_run/toplayer" toplayer \
            || { _db_cleanup; return 1; }
        _db_tl_mounted=1
        _db_tl=$_db_run/toplayer/$_db_tlpath
    fi

    _db_data=$_db_top/$_db_dpath
    [ -d "$_db_data" ] || { _db_fail "docker data-root $_db_dpath not found on $_db_rootspec" \
        "set docker_path= to docker's data-root relative to the partition's top level"; _db_cleanup; return 1; }
    _db_resolve "$_db_data" "$_db_ref" || { _db_cleanup; return 1; }

    # Safe swap: the old root stays until the new one is complete.
    _db_new=$_db_top/$_db_rw.new _db_old=$_db_top/$_db_rw.old
    [ -e "$_db_new" ] && _db_delete "$_db_new"
    [ -e "$_db_old" ] && _db_delete "$_db_old"
    if [ -e "$_db_new" ] || [ -e "$_db_old" ]; then
        _db_fail "leftover $_db_new or $_db_old cannot be deleted" \
            "delete it by hand (btrfs subvolume delete) from the emergency shell"; _db_cleanup; return 1
    fi
    mkdir -p "${_db_new%/*}"
    _db_o=$(btrfs subvolume snapshot "$_db_sub" "$_db_new" 2>&1) || { _db_fail \
        "snapshot of $_db_sub failed: $(printf '%s' "$_db_o" | tail -n 1)" \
        "check free space on $_db_rootspec (btrfs filesystem usage)"; _db_cleanup; return 1; }
    if [ -d "$_db_tl" ]; then
        _db_tool cp
        _db_o=$("$_db_tp" -a "$_db_tl/." "$_db_new/" 2>&1) || { _db_delete "$_db_new"; _db_fail \
            "copying the top layer $_db_tlpath failed: $(printf '%s' "$_db_o" | tail -n 1)" \
            "fix or remove the file named there in the top layer"; _db_cleanup; return 1; }
        # cp -a of "<top layer>/." also copies the top layer's own 0700 mode onto
        # the new root: give / back the image's mode and owner.
        _db_o=$(stat -c '%a %u:%g' "$_db_sub")
        chmod "${_db_o% *}" "$_db_new"
        chown "${_db_o#* }" "$_db_new"
        _db_merge_accounts "$_db_tl" "$_db_sub" "$_db_new" || { _db_delete "$_db_new"; _db_fail \
            "merging the image's users and groups into $_db_f of the new root failed" \
            "check free space on $_db_rootspec (btrfs filesystem usage), or remove $_db_f from the top layer"
            _db_cleanup; return 1; }
    else
        _db_note="no top layer at $_db_tlpath, the image boots unchanged"
    fi
    if [ -e "$_db_top/$_db_rw" ]; then
        mv "$_db_top/$_db_rw" "$_db_old" 2>/dev/null || { _db_delete "$_db_new"; _db_fail \
            "cannot move the old rw layer $_db_rw aside" "delete $_db_rw by hand from the emergency shell"
            _db_cleanup; return 1; }
    fi
    mv "$_db_new" "$_db_top/$_db_rw" 2>/dev/null || { mv "$_db_old" "$_db_top/$_db_rw" 2>/dev/null
        _db_fail "cannot rename $_db_rw.new to $_db_rw" "rename it by hand from the emergency shell"
        _db_cleanup; return 1; }
    if [ -e "$_db_old" ] && ! _db_delete "$_db_old"; then
        _db_note="${_db_note:+$_db_note; }warning: could not delete $_db_rw.old (deleted next boot)"
    fi
    _db_cleanup
    [ -z "$_db_note" ] || printf 'dockerboot: %s\n' "$_db_note" >&2
    _db_uptime _db_t1
    printf 'dockerboot: %s is now a fresh snapshot of %s (uptime %s -> %s)\n' \
        "$_db_rw" "$_db_ref" "$_db_t0" "$_db_t1" >&2
    return 0
}
