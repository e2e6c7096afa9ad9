"""Social needs (SDOH): the AHC HRSN screening read into named variables, and closed-loop referrals."""
