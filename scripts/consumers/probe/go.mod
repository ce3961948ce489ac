module kcr.local/consumers/probe

go 1.26
