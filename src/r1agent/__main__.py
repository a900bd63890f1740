from r1agent.cli import main

main()
