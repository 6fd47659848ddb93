# bash completion for filecache. Generated from its kong grammar by `make docs`; do not edit.
_filecache() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd= i skip=
	# --flag=value: bash splits it at the '=' (COMP_WORDBREAKS).
	if [ "$cur" = = ]; then
		cur= prev=${COMP_WORDS[COMP_CWORD-1]}
	elif [ "$prev" = = ] && [ "$COMP_CWORD" -ge 2 ]; then
		prev=${COMP_WORDS[COMP_CWORD-2]}
	fi
	for ((i = 1; i < COMP_CWORD; i++)); do
		if [ -n "$skip" ]; then
			skip=
			continue
		fi
		case ${COMP_WORDS[i]} in
		--) break ;;
		=) skip=1 ;;
		--engine|--btf|--from|--max-depth|--include|--exclude|--sort|--top|--range|--output|--max-size|--pidfile|--n|-n|--mount|--min|--watch|--iterations|--format|--web.listen-address|--web.telemetry-path|--max-age|--path.rootfs|--rate|--jobs) [ "${COMP_WORDS[i+1]:-}" = = ] || skip=1 ;;
		-*) ;;
		query|doctor|touch|evict|lock|top|serve|snapshot|restore)
			cmd=${COMP_WORDS[i]}
			break
			;;
		*)
			cmd=query
			break
			;;
		esac
	done
	case $prev in
	--engine)
		mapfile -t COMPREPLY < <(compgen -W 'auto bpf cachestat mincore' -- "$cur")
		return
		;;
	--btf)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
		;;
	--from)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
		;;
	--max-depth)
		COMPREPLY=()
		return
		;;
	--include)
		COMPREPLY=()
		return
		;;
	--exclude)
		COMPREPLY=()
		return
		;;
	--sort)
		mapfile -t COMPREPLY < <(compgen -W 'none cached size percent path' -- "$cur")
		return
		;;
	--top)
		COMPREPLY=()
		return
		;;
	--range)
		COMPREPLY=()
		return
		;;
	--output)
		COMPREPLY=()
		return
		;;
	--max-size)
		COMPREPLY=()
		return
		;;
	--pidfile)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
		;;
	--n|-n)
		COMPREPLY=()
		return
		;;
	--mount)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
		;;
	--min)
		COMPREPLY=()
		return
		;;
	--watch)
		COMPREPLY=()
		return
		;;
	--iterations)
		COMPREPLY=()
		return
		;;
	--format)
		mapfile -t COMPREPLY < <(compgen -W 'table prometheus' -- "$cur")
		return
		;;
	--web.listen-address)
		COMPREPLY=()
		return
		;;
	--web.telemetry-path)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
		;;
	--max-age)
		COMPREPLY=()
		return
		;;
	--path.rootfs)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
		;;
	--rate)
		COMPREPLY=()
		return
		;;
	--jobs)
		COMPREPLY=()
		return
		;;
	esac
	local flags
	case $cmd in
	'') flags='--help -h --version --json --ndjson --verbose -v --engine --btf --from --null -0 --max-depth --xdev --follow --include --exclude --files --bytes --sort --top --detail --map --range --no-headings --output --by-cgroup' ;;
	query) flags='--help -h --version --json --ndjson --verbose -v --engine --btf --from --null -0 --max-depth --xdev --follow --include --exclude --files --bytes --sort --top --detail --map --range --no-headings --output --by-cgroup' ;;
	doctor) flags='--help -h --version --json --ndjson --verbose -v --engine --btf' ;;
	touch) flags='--help -h --version --json --ndjson --verbose -v --engine --btf --from --null -0 --max-depth --xdev --follow --include --exclude --dry-run --range --max-size' ;;
	evict) flags='--help -h --version --json --ndjson --verbose -v --engine --btf --from --null -0 --max-depth --xdev --follow --include --exclude --dry-run --range --sync' ;;
	lock) flags='--help -h --version --json --ndjson --verbose -v --engine --btf --from --null -0 --max-depth --xdev --follow --include --exclude --dry-run --range --daemon --pidfile' ;;
	top) flags='--help -h --version --json --ndjson --verbose -v --engine --btf --n -n --mount --min --watch --iterations --format --output' ;;
	serve) flags='--help -h --version --json --ndjson --verbose -v --engine --btf --web.listen-address --web.telemetry-path --n -n --min --max-age --path.rootfs' ;;
	snapshot) flags='--help -h --version --json --ndjson --verbose -v --engine --btf --from --null -0 --max-depth --xdev --follow --include --exclude --top --mount --output -o' ;;
	restore) flags='--help -h --version --json --ndjson --verbose -v --engine --btf --dry-run --max-size --rate --jobs' ;;
	esac
	case $cur in
	-*)
		mapfile -t COMPREPLY < <(compgen -W "$flags" -- "$cur")
		return
		;;
	esac
	case $cmd in
	'') mapfile -t COMPREPLY < <(compgen -W 'query doctor touch evict lock top serve snapshot restore' -- "$cur"; compgen -f -- "$cur") ;;
	query|touch|evict|lock|snapshot|restore) mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
	doctor|top|serve) COMPREPLY=() ;;
	esac
}
complete -o filenames -F _filecache filecache
