from rentaliq.cli.main import main

main()
