from lbt_agents.cli import main

main()
