# bash completion for meshctl (installed by `make install` into
# share/bash-completion/completions/meshctl).  Commands from `meshctl --help`,
# options from `meshctl COMMAND --help`, and DOMAIN/PRODUCT names from
# `meshctl list` (what the caller may see, through the mesh service).

_meshctl_store_args() {
	local i
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--store) echo "--store ${COMP_WORDS[i + 1]}" ;;
		--store=*) echo "${COMP_WORDS[i]}" ;;
		esac
	done
}

_meshctl() {
	local cur prev cmd i
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--store) ((i++)) ;;
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	if [[ $prev == --store ]]; then
		COMPREPLY=($(compgen -d -- "$cur"))
		return
	fi
	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--store --json --help --version" -- "$cur"))
		else
			local cmds
			cmds=$(meshctl --help 2>/dev/null | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
			COMPREPLY=($(compgen -W "$cmds" -- "$cur"))
		fi
		return
	fi
	if [[ $cur == -* ]]; then
		local opts
		opts=$(meshctl $(_meshctl_store_args) "$cmd" --help 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | sort -u)
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		return
	fi
	case $cmd in
	publish | validate)
		COMPREPLY=($(compgen -d -- "$cur")) ;;
	init)
		COMPREPLY=($(compgen -f -- "$cur")) ;;
	list | diff | deprecate | retire | access | request | grant | grants | revoke | consumers | lineage | show)
		local names
		names=$(meshctl $(_meshctl_store_args) list 2>/dev/null |
			awk '/^[^ ]/ { print $1; split($1, part, "/"); print part[1] }' | sort -u)
		COMPREPLY=($(compgen -W "$names" -- "$cur")) ;;
	domain)
		COMPREPLY=($(compgen -W "create show list owners" -- "$cur")) ;;
	esac
}
complete -F _meshctl meshctl
