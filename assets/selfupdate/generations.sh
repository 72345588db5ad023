# shellcheck shell=sh disable=SC2154,SC2034 # settings from dockerboot-update; fields read by it and its parts
# dockerboot-update's generation records: read as the wizard writes them, and
# whether a rollback holds.  Sourced by dockerboot-update (POSIX sh).

# The wizard writes them with sorted keys and an indent of 2 (generation_record.encode):
# top-level keys at 2 blanks, those of "inputs" at 4.  A value that does not
# match what the wizard would write makes the record unreadable here.
rec() { sed -n "s/^  \"$2\": \"\\([^\"\\\\]*\\)\",\\{0,1\\}\$/\\1/p" "$1" | head -n 1; }
rec_raw() { sed -n "s/^  \"$2\": \\([a-z0-9]*\\),\\{0,1\\}\$/\\1/p" "$1" | head -n 1; }
rec_in() { sed -n "/^  \"inputs\": {\$/,/^  }/s/^    \"$2\": \"\\([^\"\\\\]*\\)\",\\{0,1\\}\$/\\1/p" "$1" | head -n 1; }
rec_files() { sed -n '/^  "files": \[$/,/^  \]/s/^    "\([A-Za-z0-9][A-Za-z0-9._+-]*\)",\{0,1\}$/\1/p' "$1"; }

is_id() { printf '%s\n' "$1" | grep -Eqx 'sha256:[0-9a-f]{64}'; }
is_kver() { printf '%s\n' "$1" | grep -Eqx '[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}'; }
is_name() { printf '%s\n' "$1" | grep -Eqx '[A-Za-z0-9][A-Za-z0-9._+-]{0,127}' && [ "$1" != generation.json ]; }

# read_gen N: g_* = generation N's record; non-zero when it is not one the
# wizard would accept (then it is neither used nor deleted).
read_gen() {
    g_dir=$top/$boot_dir/gen/$1 g_rec=$top/$boot_dir/gen/$1/generation.json
    [ -d "$g_dir" ] && [ ! -L "$g_dir" ] && [ -f "$g_rec" ] && [ ! -L "$g_rec" ] || return 1
    g_schema=$(rec_raw "$g_rec" schema) g_n=$(rec_raw "$g_rec" number)
    g_kver=$(rec "$g_rec" kernel_version) g_ref=$(rec "$g_rec" image_ref) g_id=$(rec "$g_rec" image_id)
    g_created=$(rec "$g_rec" created) g_kernel=$(rec "$g_rec" kernel) g_initrd=$(rec "$g_rec" initrd)
    g_legacy=$(rec_raw "$g_rec" legacy) g_pinned=$(rec_raw "$g_rec" pinned)
    # A rollback's: the images it turned away from (a record of an earlier
    # version has no such key: g_away_known stays empty).
    g_away=$(sed -n '/^  "rolled_back_from": \[$/,/^  \]/s/^    "\(sha256:[0-9a-f]\{64\}\)",\{0,1\}$/\1/p' "$g_rec" | tr '\n' ' ')
    g_away_known=''
    grep -q '^  "rolled_back_from": \[' "$g_rec" && g_away_known=1
    g_gen=$(rec_in "$g_rec" generator) g_kv_in=$(rec_in "$g_rec" kernel_version) g_assets=$(rec_in "$g_rec" assets)
    g_loader=gen/$1/$g_kernel g_initrd_path=gen/$1/$g_initrd
    if [ "$1" = 0 ]; then
        # The flat pair of an earlier version, adopted by the wizard: its files
        # are in boot_dir itself and owned by nobody (never deleted).  Without a
        # known image it has no entry (the wizard's rule): not used here.
        g_loader=$g_kernel g_initrd_path=$g_initrd
        [ "$g_schema" = 1 ] && [ "$g_n" = 0 ] && [ "$g_legacy" = true ] && is_id "$g_id" \
            && is_name "$g_kernel" && is_name "$g_initrd" && [ "$g_pinned" = false ] && [ -n "$g_ref" ]
        return
    fi
    [ "$g_schema" = 1 ] && [ "$g_n" = "$1" ] && [ "$g_legacy" = false ] && is_id "$g_id" \
        && is_kver "$g_kver" && is_name "$g_kernel" && is_name "$g_initrd" && [ -n "$g_ref" ] \
        && case $g_ref in *[\"\ ]*) false ;; esac \
        && case $g_pinned in true|false) ;; *) false ;; esac \
        && case $g_gen in initramfs-tools|dracut|mkinitcpio) ;; *) false ;; esac
}

# generations: $gens = the numbers with a valid record, ascending; $next = the
# next number (above every directory ever made there, like the wizard's).
generations() {
    gens='' next=1
    for d in "$top/$boot_dir/gen"/*; do
        n=${d##*/}
        # As wizard/generations.py: 0 or 1-9 digits without a leading zero.
        case $n in ''|*[!0-9]*|0?*|??????????*) continue ;; esac
        [ "$n" -ge "$next" ] && next=$((n + 1))
        read_gen "$n" && gens="$gens $n"
    done
    gens=$(for n in $gens; do echo "$n"; done | sort -n | tr '\n' ' ')
}

# newest_two: n_* = the newest generation, p_* = the one before (or empty).
newest_two() {
    # shellcheck disable=SC2086 # one word per number
    set -- $gens
    n_num='' p_num='' p_id=''
    while [ "$#" -gt 0 ]; do p_num=$n_num n_num=$1; shift; done
    if [ -n "$p_num" ]; then
        read_gen "$p_num"
        p_id=$g_id p_ref=$g_ref p_loader=$g_loader p_initrd=$g_initrd_path
    fi
    if [ -n "$n_num" ]; then
        read_gen "$n_num"
        n_id=$g_id n_ref=$g_ref n_kver=$g_kver n_loader=$g_loader n_initrd=$g_initrd_path
        n_legacy=$g_legacy
        n_pinned=$g_pinned n_gen=$g_gen n_assets=$g_assets n_created=$g_created
        n_away=$g_away n_away_known=$g_away_known
    fi
}

# rollback_state: rb_num = the newest generation when it is a rollback (else
# empty), rb_from = the images it turned away from (its record's, else the
# previous generation's), rb_holds = true while the tag ($t_id) is one of
# them, false when it moved elsewhere, empty when the tag is unknown
# (wizard/boot/status.py rollback_state).
rollback_state() {
    rb_num='' rb_from='' rb_holds=''
    [ -n "$n_num" ] && [ "$n_pinned" = true ] || return 0
    rb_num=$n_num
    if [ -n "$n_away_known" ]; then rb_from=${n_away% }; else rb_from=$p_id; fi
    is_id "${t_id:-}" || return 0
    case " $rb_from " in *" $t_id "*) rb_holds=true ;; *) rb_holds=false ;; esac
}

# rollback_line: the rollback in one line (wizard/boot/status.py rollback_line).
rollback_line() {
    away=''
    for i in $rb_from; do away="${away:+$away, }@$(short "$i")"; done
    printf 'generation %s is a rollback to @%s since %s (from %s)' "$rb_num" "$(short "$n_id")" \
        "$n_created" "${away:-an unknown image}"
    if [ "$rb_holds" = false ]; then
        printf ': %s moved to @%s since: an update returns to it' "$image" "$(short "$t_id")"
    else
        printf ': it holds while %s is one of those; an update run by hand returns to %s' "$image" "$image"
    fi
}
