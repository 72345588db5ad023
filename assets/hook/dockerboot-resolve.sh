# dockerboot-resolve.sh — image reference -> the image's top-layer subvolume
# (repositories.json, image config, ChainID, layerdb cache-id).
# A part of dockerboot-core.sh (DESIGN §3), sourced by it from its own
# directory; defines functions only.  POSIX sh, busybox ash compatible,
# `set -u` clean; every name starts with _db like the core's.
# shellcheck shell=sh disable=SC2154 # the core and its other parts set the _db_ variables

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

# _db_diff_ids CONFIG: _db_diffs = the image config's rootfs.diff_ids (as
# wizard/images.py reads them), one per word; fails when there are none or
# one is not sha256:<64 hex>.  Other "diff_ids" (an extra field, a label, a
# history entry) are not looked at.  The JSON is split at its quotes once
# escapes are blanked out (\" and \\ -> __): the pieces alternate between
# outside and inside strings, and the outside ones carry the nesting.
# Whitespace goes first (docker writes none outside strings anyway).  A
# duplicate key: the last wins, as in Go and Python.
_db_diff_ids() {
    # One sed process: the lines joined, the whitespace dropped, the escapes blanked.
    _db_o=$(sed -e ':a' -e '$!N' -e '$!ba' -e 's/[[:space:]]//g' -e 's/\\./__/g' <"$1") || return 1
    case $- in *f*) _db_noglob=1 ;; *) _db_noglob=0; set -f ;; esac
    _db_ifs=$IFS; IFS='"'
    # shellcheck disable=SC2086 # split at the quotes
    set -- $_db_o
    IFS=$_db_ifs
    [ "$_db_noglob" = 1 ] || set +f
    # _db_in: inside a string; _db_k: the last string; _db_at: 1 = in the
    # top-level rootfs, 2 = in its diff_ids array (depth 1 = the top object).
    _db_in=0 _db_depth=0 _db_at=0 _db_k='' _db_diffs='' _db_bad=
    for _db_l do
        if [ "$_db_in" = 1 ]; then
            _db_in=0 _db_k=$_db_l
            if [ "$_db_at" = 2 ]; then
                case $_db_l in sha256:*[!0-9a-f]*) _db_bad=1 ;; sha256:*) ;; *) _db_bad=1 ;; esac
                [ "${#_db_l}" = 71 ] || _db_bad=1
                _db_diffs="$_db_diffs $_db_l"
            fi
            continue
        fi
        _db_in=1
        case $_db_depth:$_db_at:$_db_k:$_db_l in
            '1:0:rootfs::{'*) _db_at=1 _db_diffs='' _db_bad='' ;;
            '2:1:diff_ids::['*) _db_at=2 ;;
        esac
        case $_db_l in *[][{}]*) ;; *) continue ;; esac
        while [ -n "$_db_l" ]; do
            case $_db_l in
                ['[{']*) _db_depth=$((_db_depth + 1)) ;;
                [']}']*) _db_depth=$((_db_depth - 1))
                    [ "$_db_at" = 2 ] && [ "$_db_depth" -lt 3 ] && _db_at=1
                    [ "$_db_at" = 1 ] && [ "$_db_depth" -lt 2 ] && _db_at=0 ;;
            esac
            _db_l=${_db_l#?}
        done
    done
    _db_diffs=${_db_diffs# }
    [ -n "$_db_diffs" ] && [ -z "$_db_bad" ]
}

# _db_resolve DATA_ROOT REF: _db_sub = the image's top-layer subvolume,
# _db_id = its ID (64 hex): repositories.json -> image config -> diff_ids ->
# ChainID -> layerdb cache-id -> btrfs/subvolumes/<cache-id>.  Reads this
# image's metadata, and from 4 layers on every layerdb entry's "diff" (the
# ChainID by the layerdb walk, _db_top_chain).  REF "sha256:<64 hex>" pins an
# image by ID (no tag, no repositories.json; a short ID is refused).  On
# failure _db_why says it in a few words ("is not in the docker store").
_db_resolve() {
    _db_img=$1/image/btrfs
    case $2 in
        sha256:*)
            _db_ref=$2 _db_id=${2#sha256:}
            case $_db_id in *[!0-9a-f]*) _db_id= ;; esac
            [ "${#_db_id}" = 64 ] || { _db_why="is not a full image ID"; _db_fail \
                "docker_image=$2 is not a full image ID (sha256: and 64 hex digits)" \
                "docker images --no-trunc lists the IDs; a short ID is not accepted"; return 1; }
            [ -f "$_db_img/imagedb/content/sha256/$_db_id" ] || { _db_why="is not in the docker store"
                _db_fail "image $2 is not in the docker store ($_db_img/imagedb/content/sha256 has no such ID)" \
                "docker images --no-trunc lists the IDs there; pin an image that exists"; return 1; }
            _db_resolve_id "$1"
            return
            ;;
    esac
    _db_normalize "$2"
    _db_ref=$_db_r
    [ -f "$_db_img/repositories.json" ] || { _db_why="cannot be looked up (no repositories.json)"; _db_fail \
        "$1 has no $_db_img/repositories.json" \
        "check docker_path= and that docker uses the btrfs storage driver"; return 1; }
    # The JSON without whitespace, split by the shell at , { and } into
    # "key":"value" words (one tr process); the ref is matched literally (a
    # case pattern from a quoted variable): no regex escaping.
    _db_id='' _db_ifs=$IFS
    case $- in *f*) _db_noglob=1 ;; *) _db_noglob=0; set -f ;; esac
    IFS=',{}'
    for _db_l in $(tr -d ' \n\r\t' <"$_db_img/repositories.json"); do
        case $_db_l in "\"$_db_ref\":\"sha256:"*) _db_id=${_db_l#*\"sha256:}; _db_id=${_db_id%\"} ;; esac
    done
    IFS=$_db_ifs
    [ "$_db_noglob" = 1 ] || set +f
    case $_db_id in
        '' | *[!0-9a-f]*) _db_why="is not in the docker store"; _db_fail \
            "image $_db_ref is not in $_db_img/repositories.json" \
            "docker pull/build it, or fix docker_image= (docker images lists what is there)"; return 1 ;;
    esac
    _db_resolve_id "$1"
}

# _db_resolve_id DATA_ROOT: _db_sub for the image whose ID is _db_id (named
# _db_ref in messages): image config -> diff_ids -> ChainID -> cache-id.
# The ChainID comes from the hook's record of the boot before when it has one
# for this ID (_db_chains, "<id> <chain>" lines that dockerboot-assess.sh
# reads from the state directory): a ChainID is a function of the image's
# config, whose name is its digest, so it never changes for an ID, and the
# record saves the config's parse and the hashing (two processes or more).
# A record whose layer is not there is ignored (computed again).  Every pair
# used is noted in _db_chused for the next boot.
_db_resolve_id() {
    _db_img=$1/image/btrfs
    _db_why="is damaged in the docker store"
    _db_cfg=$_db_img/imagedb/content/sha256/$_db_id
    [ -f "$_db_cfg" ] || { _db_fail "config of image $_db_ref ($_db_cfg) is missing" \
        "the docker store is damaged: pull or build $_db_ref again"; return 1; }
    _db_c=''
    case ${_db_chains:-} in
        *"$_db_nl$_db_id "*)
            _db_c=${_db_chains#*"$_db_nl$_db_id "}
            _db_c=sha256:${_db_c%%"$_db_nl"*}
            _db_cache_id "$1" || _db_c='' ;;
    esac
    if [ -z "$_db_c" ]; then
        _db_diff_ids "$_db_cfg" || { _db_fail "image $_db_ref has no valid rootfs.diff_ids in $_db_cfg" \
            "the docker store is damaged: pull or build $_db_ref again"; return 1; }
        # shellcheck disable=SC2086 # one diff ID per word
        _db_top_chain "$1" $_db_diffs
        _db_cache_id "$1" || { case $_db_cid in
            '' | *[!0-9a-f]*) _db_fail "layer metadata $_db_cidf of image $_db_ref is missing" \
                "the docker store is damaged: pull or build $_db_ref again" ;;
            *) _db_fail "subvolume $1/btrfs/subvolumes/$_db_cid of image $_db_ref is missing" \
                "the docker store is damaged: pull or build $_db_ref again" ;;
        esac; return 1; }
    fi
    _db_sub=$1/btrfs/subvolumes/$_db_cid _db_why=
    _db_chused="${_db_chused:-}$_db_id ${_db_c#sha256:}$_db_nl"
}

# _db_cache_id DATA_ROOT: _db_cid = the cache-id of the layer _db_c (its
# file _db_cidf); non-zero unless it is hex and names a subvolume there.
_db_cache_id() {
    _db_cidf=$_db_img/layerdb/sha256/${_db_c#sha256:}/cache-id
    _db_cid=''
    { read -r _db_cid <"$_db_cidf"; } 2>/dev/null || [ -n "$_db_cid" ]  # no final newline
    case $_db_cid in '' | *[!0-9a-f]*) return 1 ;; esac
    [ -d "$1/btrfs/subvolumes/$_db_cid" ]
}
