# shellcheck shell=sh disable=SC2154 # the settings and records come from dockerboot-update
# dockerboot-update status: the partition's status inside the booted system.
# Sourced by dockerboot-update (POSIX sh).
#
# The JSON is the wizard's (`dockerboot-wizard status --json`, schema
# docs/status-json.md, version 1), made from the same sources: the
# generation records, the hook's state files, /proc/cmdline and docker.
# The integration test compares the two documents key by key.

# js VALUE: VALUE as a JSON string ("" is null): backslash and quote escaped,
# each control character as \u00XX (the value kept, as Python's json.dumps).
# One sed script, made once when sourced; the lines joined (\u000a).
JS_SED='s/\\/\\\\/g; s/"/\\"/g; s/\n/\\u000a/g' i=1
while [ "$i" -lt 32 ]; do
    # shellcheck disable=SC2059 # the octal escape is the format
    [ "$i" = 10 ] || JS_SED="$JS_SED; s/$(printf "\\$(printf %o "$i")")/\\\\u00$(printf %02x "$i")/g"
    i=$((i + 1))
done
js() {
    [ -n "$1" ] || { printf null; return; }
    printf '"%s"' "$(printf '%s' "$1" | sed -e ':a' -e '$!N' -e '$!ba' -e "$JS_SED")"
}

# jn VALUE: VALUE as a JSON number: ASCII digits without leading zeros
# (010 is no JSON), else null.
jn() {
    case $1 in ''|*[!0-9]*) printf null; return ;; esac
    v=$1
    while :; do case $v in 0?*) v=${v#0} ;; *) break ;; esac; done
    printf '%s' "$v"
}

# problem TEXT: one line of the document's "problems" (collected in a file:
# the parts of the document are made in subshells).
problem() { printf '%s\n' "$*" >>"$run/problems"; }

# state NAME: the hook's state file NAME, never through a symlink, else nothing.
state() {
    d=$top
    for p in $(printf '%s' "$state_dir" | tr / ' ') "$1"; do
        d=$d/$p
        [ -L "$d" ] && { problem "$d is a symlink: not read"; return 0; }
    done
    [ ! -e "$d" ] || [ -f "$d" ] || { problem "$d is not a regular file: not read"; return 0; }
    [ -f "$d" ] && head -c 4096 "$d"
}

# state_id NAME COUNT: the image ID a state file holds ("<id>", or "<id> <n>"
# when COUNT is 1), as s_id and s_n; a problem line when it does not parse.
state_id() {
    s_text=$(state "$1") s_id='' s_n=''
    [ -n "$s_text" ] || return 1
    # shellcheck disable=SC2086 # its words
    set -- "$1" "$2" $s_text
    if is_id "${3:-}" && { [ "$2" = 0 ] || case ${4:-} in ''|*[!0-9]*) false ;; esac; }; then
        s_id=$3 s_n=${4:-}
        return 0
    fi
    problem "state file $1 holds '$(printf '%s' "$s_text" | head -n 1 | cut -c 1-80)': ignored"
    return 1
}

# gen_json N: generation N as a generation object.
gen_json() {
    read_gen "$1" || { printf null; return; }
    printf '{"number": %s, "kernel_version": %s, "image_ref": %s, "image_id": %s, "created": %s, ' \
        "$1" "$(js "$g_kver")" "$(js "$g_ref")" "$(js "$g_id")" "$(js "$g_created")"
    printf '"legacy": %s, "pinned": %s, "loader": %s, "initrd": %s, ' \
        "$g_legacy" "$g_pinned" "$(js "$g_loader")" "$(js "$g_initrd_path")"
    if [ -n "$g_gen" ]; then
        printf '"inputs": {"generator": %s, "kernel_version": %s, "assets": %s}}' \
            "$(js "$g_gen")" "$(js "$g_kv_in")" "$(js "$g_assets")"
    else
        printf '"inputs": null}'
    fi
}

# booted_generation KERNEL REF ID RECORDED: b_gen, b_src = the generation that
# booted: the hook's record of it (generation= in state/boot), else the
# entry's dockerboot.generation= on the command line, else the newest one of
# that kernel (of that image, for the "previous" entry booting by ID).  A
# number no generation has any more is not taken.
booted_generation() {
    b_gen='' b_src=''
    case $4 in ''|*[!0-9]*|???????*) ;; *)
        case " $gens " in *" $4 "*) b_gen=$4 b_src=state; return ;; esac ;;
    esac
    v=$(tr ' ' '\n' <"${DOCKERBOOT_CMDLINE:-/proc/cmdline}" 2>/dev/null | sed -n 's/^dockerboot\.generation=//p' | tail -n 1)
    case " $gens " in *" $v "*) [ -n "$v" ] && { b_gen=$v b_src=cmdline; return; } ;; esac
    same='' byid=''
    for n in $gens; do
        read_gen "$n" && [ "$g_kver" = "$1" ] || continue
        same=$n
        [ "$g_id" = "$3" ] && byid=$n
    done
    case $2 in sha256:*) [ -n "$byid" ] && same=$byid ;; esac
    [ -n "$same" ] && b_gen=$same b_src=kernel
}

booted_json() {
    boot=$(state boot)
    [ -n "$boot" ] || { printf null; return; }
    ref=$(printf '%s\n' "$boot" | sed -n 's/^ref=//p' | tail -n 1)
    [ -n "$ref" ] || { problem "state file boot names no ref: ignored"; printf null; return; }
    for k in id configured_id kernel tries fallback generation; do
        eval "b_$k=\$(printf '%s\\n' \"\$boot\" | sed -n 's/^$k=//p' | tail -n 1)"
    done
    for k in id configured_id; do
        eval "v=\$b_$k"
        [ -z "$v" ] || is_id "$v" || { problem "state file boot has an invalid $k: ignored"; eval "b_$k=''"; }
    done
    is_kver "$b_kernel" || b_kernel=''
    b_tries=$(jn "$b_tries")
    reason=${b_fallback#* }
    booted_generation "$b_kernel" "$ref" "$b_id" "$b_generation"
    printf '{"ref": %s, "id": %s, "configured_id": %s, "kernel": %s, "tries": %s, ' \
        "$(js "$ref")" "$(js "$b_id")" "$(js "$b_configured_id")" "$(js "$b_kernel")" "$b_tries"
    printf '"fallback": %s, "fallback_reason": %s, "generation": %s, "generation_source": %s}' \
        "$([ -n "$b_fallback" ] && echo true || echo false)" "$(js "$reason")" \
        "${b_gen:-null}" "$(js "$b_src")"
}

# pending_json: the tag now against the newest generation (docker: the tag's
# ID, and a probe container when the tag is not the newest generation's image).
pending_json() {
    t_id=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null)
    if ! is_id "$t_id"; then
        printf '{"tag_id": null, "image_changed": null, "build_needed": null, "kernel_version": null, "update": null, "reasons": []}'
        return
    fi
    reasons='' changed=false
    if [ -z "$n_num" ] || [ "$t_id" != "$n_id" ]; then
        changed=true
        reasons="the tag moved: $(if [ -n "$n_num" ]; then short "$n_id"; else echo unknown; fi) -> $(short "$t_id")$NL"
    fi
    if [ "$changed" = false ]; then
        t_gen=$n_gen t_kver=$n_kver t_assets=$(conf "assets_$(printf '%s' "$n_gen" | tr - _)")
    elif t=$( (probe "$t_id" && printf '%s %s %s' "$t_gen" "$t_kver" "$t_assets") 2>/dev/null); then
        t_gen=${t%% *} t_kver=${t#* } t_kver=${t_kver%% *} t_assets=${t##* }
    else
        t_gen='' t_kver=''
    fi
    build=null
    if [ -n "$t_gen" ]; then
        changes
        build=false
        [ -n "$changes" ] && build=true reasons="$reasons$changes$NL"
    fi
    update=false
    { [ "$changed" = true ] || [ "$build" = true ]; } && update=true
    printf '{"tag_id": %s, "image_changed": %s, "build_needed": %s, "kernel_version": %s, "update": %s, "reasons": [' \
        "$(js "$t_id")" "$changed" "$build" "$(js "$t_kver")" "$update"
    sep=''
    printf '%s' "$reasons" | while IFS= read -r r; do printf '%s%s' "$sep" "$(js "$r")"; sep=', '; done
    printf ']}'
}

status_json() {
    generations
    newest_two
    : >"$run/problems"
    good='' f_id='' f_n=''
    state_id good 0 && good=$s_id
    state_id failed 1 && f_id=$s_id f_n=$s_n
    printf '{"version": 1, "label": %s, "image": %s, "state_dir": %s,\n' \
        "$(js "$label")" "$(js "$image")" "$(js "$state_dir")"
    printf ' "booted": %s,\n' "$(booted_json)"
    if [ -n "$good" ]; then printf ' "last_good": {"id": %s},\n' "$(js "$good")"; else printf ' "last_good": null,\n'; fi
    if [ -n "$f_id" ]; then printf ' "failed": {"id": %s, "tries": %s},\n' "$(js "$f_id")" "$(jn "$f_n")"; else printf ' "failed": null,\n'; fi
    printf ' "generation": %s,\n' "$(if [ -n "$n_num" ]; then gen_json "$n_num"; else printf null; fi)"
    printf ' "previous": %s,\n' "$(if [ -n "$p_num" ]; then gen_json "$p_num"; else printf null; fi)"
    printf ' "generations": ['
    sep=''
    for n in $gens; do printf '%s%s' "$sep" "$(gen_json "$n")"; sep=', '; done
    printf '],\n "pending": %s,\n "problems": [' "$(pending_json)"
    sep=''
    while IFS= read -r line; do printf '%s%s' "$sep" "$(js "$line")"; sep=', '; done <"$run/problems"
    printf ']}\n'
}

status_text() {
    generations
    newest_two
    say "LABEL=$label: $image"
    [ -n "$n_num" ] && say "default entry: generation $n_num, kernel $n_kver, image @$(short "$n_id")"
    [ -n "$p_num" ] && say "previous entry: generation $p_num, image @$(short "$p_id")"
    boot=$(state boot)
    [ -n "$boot" ] && say "last boot: $(printf '%s\n' "$boot" | sed -n 's/^ref=//p') @$(short "$(printf '%s\n' "$boot" | sed -n 's/^id=//p')") on kernel $(printf '%s\n' "$boot" | sed -n 's/^kernel=//p')$(printf '%s\n' "$boot" | sed -n 's/^fallback=..*/ - FALLBACK: &/p')"
    good=''
    state_id good 0 2>/dev/null && good=$s_id
    [ -n "$good" ] && say "last good image: @$(short "$good")"
    t_id=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null)
    if is_id "$t_id"; then
        if [ -n "$n_num" ] && [ "$t_id" = "$n_id" ]; then say "up to date"
        else say "the tag moved to @$(short "$t_id"): run dockerboot-update"; fi
    fi
}
