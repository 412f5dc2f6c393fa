from mcast_sdn.launch import main

main()
