from raftspec.cli import main

raise SystemExit(main())
