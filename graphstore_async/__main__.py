from graphstore_async.cli import main

raise SystemExit(main())
