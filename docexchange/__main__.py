from docexchange.cli.main import main

main()
