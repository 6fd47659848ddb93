# fish completion for filecache. Generated from its kong grammar by `make docs`; do not edit.
set -l filecache_commands query doctor touch evict lock top serve

# Commands, as the first operand (else it is a path for query).
complete -c filecache -n "not __fish_seen_subcommand_from $filecache_commands" -a query -d 'Measure files (the default command: filecache PATH... is filecache query PATH...)'
complete -c filecache -n "not __fish_seen_subcommand_from $filecache_commands" -a doctor -d 'Tell which engines and BPF methods work on this machine, and why the others do not'
complete -c filecache -n "not __fish_seen_subcommand_from $filecache_commands" -a touch -d 'Bring files into the page cache (like vmtouch -t), showing the figures before and after'
complete -c filecache -n "not __fish_seen_subcommand_from $filecache_commands" -a evict -d 'Drop files\' clean pages from the page cache (like vmtouch -e), showing the figures before and after'
complete -c filecache -n "not __fish_seen_subcommand_from $filecache_commands" -a lock -d 'Map and lock files in memory (like vmtouch -l) until SIGTERM, SIGINT or SIGHUP, showing the figures before and after'
complete -c filecache -n "not __fish_seen_subcommand_from $filecache_commands" -a top -d 'List what fills the page cache across every mounted filesystem, without a list of files (needs the bpf engine)'
complete -c filecache -n "not __fish_seen_subcommand_from $filecache_commands" -a serve -d 'Serve what fills the page cache to Prometheus, walking it when scraped (needs the bpf engine)'

# Flags of every command.
complete -c filecache -s h -l help -d 'Show context-sensitive help'
complete -c filecache -l version -d 'Print the version and exit'
complete -c filecache -l json -d 'Print one JSON document instead of a table (schema in README.md)'
complete -c filecache -l ndjson -d 'Print one JSON object a line as files are measured, every file of a tree included, then a summary line'
complete -c filecache -s v -l verbose -d 'On a BPF load failure, also print the kernel verifier\'s last lines'
complete -c filecache -l engine -x -a 'auto bpf cachestat mincore' -d 'How to measure: auto,bpf,cachestat,mincore. auto takes bpf, then cachestat, then mincore, file by file'
complete -c filecache -l btf -r -F -d 'Kernel BTF to load against, for kernels without /sys/kernel/btf/vmlinux'

# Flags of some commands.
complete -c filecache -n "not __fish_seen_subcommand_from doctor top serve" -l from -r -F -d 'Also measure the paths listed in FILE, one a line (- for standard input)'
complete -c filecache -n "not __fish_seen_subcommand_from doctor top serve" -s 0 -l null -d 'The --from list is separated by NUL bytes (find -print0), not newlines'
complete -c filecache -n "not __fish_seen_subcommand_from doctor top serve" -l max-depth -x -d 'Descend at most N levels below a directory argument (1: its own files only; 0: no limit)'
complete -c filecache -n "not __fish_seen_subcommand_from doctor top serve" -l xdev -d 'Stay on the filesystem of each directory argument'
complete -c filecache -n "not __fish_seen_subcommand_from doctor top serve" -l follow -d 'Follow symlinks inside directories (each directory and file is still counted once; loops are reported)'
complete -c filecache -n "not __fish_seen_subcommand_from doctor top serve" -l include -x -d 'Measure only the files in directories whose name matches GLOB (repeatable)'
complete -c filecache -n "not __fish_seen_subcommand_from doctor top serve" -l exclude -x -d 'Skip files and directories whose name matches GLOB (repeatable)'
complete -c filecache -n "not __fish_seen_subcommand_from doctor touch evict lock top serve" -l files -d 'List every file found in a directory, not only the directory\'s sums'
complete -c filecache -n "not __fish_seen_subcommand_from doctor touch evict lock top serve" -l bytes -d 'Print exact byte counts in the table, not human sizes'
complete -c filecache -n "not __fish_seen_subcommand_from doctor touch evict lock top serve" -l sort -x -a 'none cached size percent path' -d 'Order the files listed: none,cached,size,percent,path (numbers largest first)'
complete -c filecache -n "not __fish_seen_subcommand_from doctor touch evict lock top serve" -l top -x -d 'List the N files of each directory argument holding the most cached pages'
complete -c filecache -n "not __fish_seen_subcommand_from doctor touch evict lock top serve" -l detail -d 'Add dirty, writeback, evicted and recently evicted pages (cachestat(2), Linux >= 6.5)'
complete -c filecache -n "not __fish_seen_subcommand_from doctor touch evict lock top serve" -l map -d 'Draw which parts of each file are cached, like vmtouch -v: O all, o some, blank none'
complete -c filecache -n "not __fish_seen_subcommand_from doctor top serve" -l range -x -d 'Measure only these bytes of each file (sizes take K, M, G, T; no LENGTH: to the end)'
complete -c filecache -n "not __fish_seen_subcommand_from doctor touch evict lock top serve" -l no-headings -d 'Print the table without its heading line'
complete -c filecache -n "not __fish_seen_subcommand_from doctor touch evict lock serve" -l output -x -d 'The table\'s columns, comma-separated: cached, pages, size, percent, dirty, writeback, evicted, recent, engine, device, inode, path'
complete -c filecache -n "__fish_seen_subcommand_from touch evict lock" -l dry-run -d 'Measure and say what would be done; change nothing'
complete -c filecache -n "__fish_seen_subcommand_from touch" -l max-size -x -d 'Skip files larger than SIZE (K, M, G, T), like vmtouch -m'
complete -c filecache -n "__fish_seen_subcommand_from evict" -l sync -d 'Write dirty pages back first: the kernel cannot drop a dirty page'
complete -c filecache -n "__fish_seen_subcommand_from lock" -l daemon -d 'Lock, then go on in the background (like vmtouch -d): return once every page is locked'
complete -c filecache -n "__fish_seen_subcommand_from lock" -l pidfile -r -F -d 'Write the pid of the process holding the pages to FILE once they are locked; it is removed on release'
complete -c filecache -n "__fish_seen_subcommand_from top serve" -s n -l n -x -d 'Rows to list (default: what fits the terminal, else 20; 0: every inode with pages)'
complete -c filecache -n "__fish_seen_subcommand_from top" -l mount -r -F -d 'Only the filesystem of PATH (repeatable)'
complete -c filecache -n "__fish_seen_subcommand_from top serve" -l min -x -d 'Only inodes holding at least SIZE of page cache (K, M, G, T)'
complete -c filecache -n "__fish_seen_subcommand_from top" -l watch -x -d 'Refresh every SECONDS, showing growth and shrinkage; --json and --ndjson then write one document or line each time'
complete -c filecache -n "__fish_seen_subcommand_from top" -l iterations -x -d 'With --watch, stop after N refreshes (0: until interrupted)'
complete -c filecache -n "__fish_seen_subcommand_from top" -l format -x -a 'table prometheus' -d 'table, or prometheus: the text format of node_exporter\'s textfile collector'
complete -c filecache -n "__fish_seen_subcommand_from serve" -l web.listen-address -x -d 'Address to listen on for scrapes (port 0: any free port, logged)'
complete -c filecache -n "__fish_seen_subcommand_from serve" -l web.telemetry-path -r -F -d 'Path under which the metrics are served'
complete -c filecache -n "__fish_seen_subcommand_from serve" -l max-age -x -d 'A walk younger than this is served again instead of walking (0: every scrape walks)'
complete -c filecache -n "__fish_seen_subcommand_from serve" -l path.rootfs -r -F -d 'Where the host\'s root filesystem is mounted, in a container: mount points and paths under it are shown without it'

# Commands that take no paths.
complete -c filecache -n "__fish_seen_subcommand_from doctor top serve" -f
