// Java's view of who it is (for the who-am-I tests): InetAddress.getLocalHost(), its canonical name, every
// interface address, and the virtual interface by name. Run as `java WhoAmI.java` (single-file source).
import java.net.*;
import java.util.*;
public class WhoAmI {
  public static void main(String[] a) throws Exception {
    InetAddress h = InetAddress.getLocalHost();
    System.out.println("LOCALHOST " + h.getHostName() + " " + h.getHostAddress());
    System.out.println("CANONICAL " + h.getCanonicalHostName());
    for (NetworkInterface ni : Collections.list(NetworkInterface.getNetworkInterfaces())) {
      for (InterfaceAddress ia : ni.getInterfaceAddresses())
        System.out.println("IF " + ni.getName() + " " + ni.getIndex() + " " + ia.getAddress().getHostAddress() + "/" + ia.getNetworkPrefixLength() + " up=" + ni.isUp());
    }
    NetworkInterface b = NetworkInterface.getByName("boxer0");
    System.out.println("BYNAME " + (b == null ? "none" : b.getName() + " mac=" + Arrays.toString(b.getHardwareAddress())));
  }
}
