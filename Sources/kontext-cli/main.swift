import KontextCLI

await Kontext.main()
