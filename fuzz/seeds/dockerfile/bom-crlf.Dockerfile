FROM busybox
WORKDIR $HOME
ENTRYPOINT sh -c 'echo $0'
CMD ["x"]
