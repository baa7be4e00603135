from wagerlab.cli import main

raise SystemExit(main())
