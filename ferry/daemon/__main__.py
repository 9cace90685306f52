from ferry.daemon.main import main

main()
